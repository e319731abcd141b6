"""The erasure's Kafka side: the person's keyed ids published on the compacted erasure list
(which streams workers and sinks check before they forward or write), their people record
tombstoned, and the wait until every sink that writes what can name a person has committed past
what the topics held at that moment — after which nothing of theirs is still on its way to
ClickHouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import ERASURE, Encoder, default_catalog
from sinks.errors import ErasureError, KafkaUnavailableError
from sinks.settings import SinkSettings
from sinks.worker.consumer import is_partition_end

# The tables an erasure waits for, and the topics they consume (settings attribute).
WATCHED = (("events", "topic_enriched"), ("dead_letters", "topic_dlq"))
Offsets = dict[tuple[str, int], int]


def publish(settings: SinkSettings, user_ids: tuple[str, ...], erasure_id: str,
            requested_at: datetime) -> None:  # fmt: skip
    """Put the ids on the erasure list (created, compacted, if missing) and tombstone their
    people records (where the catalog has people); returns once the brokers have them all."""
    people = _ensure_list(settings)
    encode = Encoder(default_catalog().latest(ERASURE))
    millis = int(requested_at.timestamp() * 1000)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all",
                         "enable.idempotence": True, "log_level": 3})  # fmt: skip
    failed: list[str] = []

    def delivered(error: object, _msg: object) -> None:
        if error is not None:
            failed.append(str(error))

    for user_id in user_ids:
        record = {"user_id": user_id, "erasure_id": erasure_id, "requested_at": millis}
        producer.produce(settings.topic_erasures, key=user_id.encode(), value=encode(record),
                         on_delivery=delivered)  # fmt: skip
        if people:
            producer.produce(settings.topic_people, key=user_id.encode(), value=None,
                             on_delivery=delivered)  # fmt: skip
    left = producer.flush(60)
    if left or failed:
        raise KafkaUnavailableError(
            f"publishing the erasure: {left} undelivered, {failed[0] if failed else ''}"
        )


def _ensure_list(settings: SinkSettings) -> bool:
    """Create the erasure list if missing; return whether the people topic exists."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 3})
    try:
        people = admin.list_topics(settings.topic_people, timeout=30).topics.get(
            settings.topic_people
        )
    except KafkaException as exc:
        raise KafkaUnavailableError(f"reading the topics: {exc}") from exc
    config = {"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
    # The cluster's default replication (-1); the streams workers create it the same way.
    topic = NewTopic(settings.topic_erasures, 1, -1, config=config)
    for future in admin.create_topics([topic], request_timeout=30).values():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise KafkaUnavailableError(f"creating {settings.topic_erasures}: {exc}") from exc
    return people is not None and people.error is None


def wait_for_sinks(settings: SinkSettings, say: Callable[[str], None] = lambda _: None) -> None:
    """Until the events and dead_letters sinks have committed past every message their topics
    held when this was called. Raises ErasureError after ``settings.erasure_wait_s``."""
    deadline = time.monotonic() + settings.erasure_wait_s
    for table, topic_setting in WATCHED:
        topic = getattr(settings, topic_setting)
        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                             "group.id": f"{settings.group_prefix}-{table}",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "isolation.level": "read_committed",
                             "enable.partition.eof": True, "log_level": 3})  # fmt: skip
        try:
            ends = _ends(consumer, topic)
            while behind := _behind(consumer, topic, ends):
                if time.monotonic() > deadline:
                    where = ", ".join(f"[{p}] at {c} of {ends[p]}" for p, c in behind.items())
                    raise ErasureError(
                        f"the {table} sink has not written {topic} up to the erasure "
                        f"({where}) within {settings.erasure_wait_s:.0f}s; is it running? "
                        "Nothing was deleted yet; ask again once it is"
                    )
                say(f"waiting for the {table} sink: {len(behind)} partitions behind")
                time.sleep(0.5)
        except KafkaException as exc:
            raise KafkaUnavailableError(f"reading the progress of the {table} sink: {exc}") from exc
        finally:
            consumer.close()


def _ends(consumer: Consumer, topic: str) -> dict[int, int]:
    found = consumer.list_topics(topic, timeout=30).topics.get(topic)
    if found is None or found.error is not None:
        return {}
    ends = {}
    for p in found.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        if high > low:
            ends[p] = high
    return ends


def _behind(consumer: Consumer, topic: str, ends: dict[int, int]) -> dict[int, int]:
    """Partitions whose committed offset is short of its end by a message (a transaction's
    marker, which the sink never commits past, is no message)."""
    tps = [TopicPartition(topic, p) for p in ends]
    committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=30)}
    return {
        p: committed[p]
        for p, end in ends.items()
        if committed[p] < end and _holds_a_message(consumer, topic, p, max(committed[p], 0), end)
    }


def _holds_a_message(consumer: Consumer, topic: str, partition: int, start: int, end: int) -> bool:
    """Whether a committed message lies in ``start``..``end`` of the partition."""
    consumer.assign([TopicPartition(topic, partition, start)])
    try:
        msgs = consumer.consume(1, timeout=5)
    finally:
        consumer.unassign()
    if not msgs:
        return True  # no answer yet: still behind, ask again
    error = msgs[0].error()
    if error is None:
        return msgs[0].offset() < end
    if is_partition_end(error):
        return False  # only transaction markers were left
    raise KafkaException(error)
