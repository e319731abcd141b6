"""The sink's Kafka side: its consumer's settings, and requests asked again while a partition's
leader moves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from sinks.settings import SinkSettings

# librdkafka's local error codes (underscore-named in confluent-kafka's public API) are used
# here only.
# While a broker stops or restarts, a partition's leader moves and a request meanwhile fails
# with one of these. Raised from the assignment callback, it ended the sink's consumer thread
# (make proof-cluster, fault leader-broker-stop): ask again until the new leader answers.
_MOVING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    # librdkafka decommissions the handle of a node that left the metadata while a request
    # waited on it: a takeover asking for watermarks then failed and ended the sink (make
    # proof-cluster, broker-sigkill; tests/unit/test_sink_consumer.py)
    KafkaError._DESTROY_BROKER,
}


def consumer(settings: SinkSettings, table: str) -> Consumer:
    session_ms = int(settings.kafka_session_timeout_s * 1000)
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.group_prefix}-{table}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",  # aborted transactions stay out
            "session.timeout.ms": session_ms,
            "heartbeat.interval.ms": max(session_ms // 6, 100),
            "fetch.max.bytes": 64 * 1024 * 1024,
            "log_level": 3,
        }
    )


def is_partition_end(error: KafkaError) -> bool:
    """The end of a partition reached: an event, not an error."""
    return error.code() == KafkaError._PARTITION_EOF


def guarded(
    callback: Callable[[Consumer, list[TopicPartition]], None],
    on_error: Callable[[Exception], None],
) -> Callable[[Consumer, list[TopicPartition]], None]:
    """A rebalance callback that never raises into librdkafka: an exception raised there
    came out of consume() as a bare KafkaError that no ``except`` matches, and ended the
    consumer thread of a live process (make proof-cluster). ``on_error`` keeps it for the
    consuming loop to raise."""

    def guarded(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            callback(consumer, partitions)
        except Exception as exc:
            on_error(exc)

    return guarded


def asking(request: Callable[[], Any]) -> Any:
    return Retrying(
        retry=retry_if_exception(_retriable),
        wait=wait_exponential_jitter(multiplier=0.2, max=3.0, jitter=0.2),
        stop=stop_after_delay(120),
        reraise=True,
    )(request)


def log_start(consumer: Consumer, tp: TopicPartition) -> int:
    low, _ = asking(lambda: consumer.get_watermark_offsets(tp, timeout=30))
    return low


def _retriable(exc: BaseException) -> bool:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    if not isinstance(error, KafkaError):
        return False
    return error.retriable() or error.code() in _MOVING
