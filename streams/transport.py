"""faust's aiokafka transport with the consumer's fetch wait taken from settings.

faust builds its consumer with ``fetch_max_wait_ms=1500``, fixed. Kafka answers a fetch as soon
as data arrives, so the wait costs nothing there; Tansu holds a fetch for much of it (a message
every 100 ms took 113 ms to arrive with a 500 ms wait and 3 ms with 50 ms), so each hop of the
pipeline paid it. ``PULSE_KAFKA_FETCH_WAIT_MS`` sets it.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as driver


def transport_class(fetch_wait_ms: int) -> type[driver.Transport]:
    class ConsumerThread(driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_wait_ms  # aiokafka reads it when it starts
            return consumer

    class WaitingConsumer(driver.Consumer):
        def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(driver.Transport):
        Consumer = WaitingConsumer

    return Transport
