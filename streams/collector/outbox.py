"""The collector's way into Kafka: a confluent-kafka producer whose deliveries resolve asyncio
futures, so a request is answered only once its envelopes are durable."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from confluent_kafka import KafkaException, Producer

from streams.settings import CollectorSettings


class KafkaOutbox:
    """A confluent-kafka producer whose deliveries resolve asyncio futures."""

    def __init__(self, settings: CollectorSettings) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": int(settings.delivery_timeout_s * 1000),
                "queue.buffering.max.messages": settings.max_buffered_messages,
                "log_level": 3,
            }
        )
        self._topic = settings.topic_raw
        # librdkafka reports every delivery within message.timeout.ms; past twice that, one
        # that has not been reported is stuck, not slow.
        self.stuck_after_s = 2 * settings.delivery_timeout_s
        self._unconfirmed: dict[int, float] = {}  # id of a send's future -> when it was sent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self.reachable = False

    def start(self) -> KafkaOutbox:
        self._thread.start()
        return self

    def _poll(self) -> None:
        checked = 0.0
        while not self._stop.is_set():
            self._producer.poll(0.05)
            if time.monotonic() - checked > 5:
                checked = time.monotonic()
                try:
                    self._producer.list_topics(self._topic, timeout=2)
                    self.reachable = True
                except KafkaException:
                    self.reachable = False

    def send(self, key: bytes, value: bytes, timestamp_ms: int) -> asyncio.Future:
        """Raises BufferError when the local queue is full."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def delivered(err: Any, msg: Any) -> None:
            def settle() -> None:
                self._unconfirmed.pop(id(future), None)
                if future.done():
                    return
                if err is not None:
                    future.set_exception(KafkaException(err))
                else:
                    future.set_result(None)

            loop.call_soon_threadsafe(settle)

        self._producer.produce(
            self._topic, value, key, timestamp=timestamp_ms, on_delivery=delivered
        )
        self._unconfirmed[id(future)] = time.monotonic()
        return future

    def oldest_unconfirmed_s(self) -> float:
        """Age of the oldest send Kafka has not confirmed or refused yet (0 when none)."""
        return time.monotonic() - min(self._unconfirmed.values(), default=time.monotonic())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._producer.flush(10)
