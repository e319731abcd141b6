"""A catalog's compacted topic: read whole, and made to hold exactly a wanted set of records
(new and changed ones published, the rest deleted by tombstone or by a replacement record)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from schemas import Decoder, Encoder, SchemaError, default_catalog
from streams.catalog import CatalogError
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics
from streams.settings import KafkaSettings

Records = dict[str, dict[str, Any]]
V = TypeVar("V")


def diff(
    current: Mapping[str, V], wanted: Mapping[str, V], same: Callable[[V, V], bool] = operator.eq
) -> tuple[dict[str, V], list[str]]:
    """(records to publish, keys to delete) that turn ``current`` into ``wanted``."""
    upserts = {k: v for k, v in wanted.items() if k not in current or not same(current[k], v)}
    deletes = sorted(k for k in current if k not in wanted)
    return upserts, deletes


def read_topic(bootstrap: str, topic: str, record: str, timeout_s: float = 30.0) -> Records:
    """The topic as it holds now (latest value per key, tombstones applied), read from the
    beginning up to the high watermark of every partition."""
    return read_values(bootstrap, topic, Decoder(default_catalog(), record), timeout_s)


def read_values(
    bootstrap: str, topic: str, decode: Callable[[bytes], Any] = bytes, timeout_s: float = 30.0
) -> dict[str, Any]:
    """Like ``read_topic``, each value as ``decode`` returns it (by default its bytes)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "pulse-catalog-reader",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        # A topic created a moment ago may not have its leader known yet: ask again.
        ends = Retrying(
            retry=retry_if_exception(_moving), wait=wait_fixed(0.2),
            stop=stop_after_delay(timeout_s), reraise=True,
        )(_ends, consumer, topic, timeout_s)  # fmt: skip
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        records: dict[str, Any] = {}
        while ends:
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error() is not None:
                    continue
                key = (msg.key() or b"").decode()
                if msg.value() is None:
                    records.pop(key, None)
                else:
                    records[key] = decode(msg.value())
                if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                    ends.pop(msg.partition(), None)
        return records
    except (KafkaException, SchemaError) as exc:
        raise CatalogError(f"reading {topic}: {exc}") from exc
    finally:
        consumer.close()


def _ends(consumer: Consumer, topic: str, timeout_s: float) -> dict[int, int]:
    """The end offset of each partition that holds anything (none: the topic does not exist)."""
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
    if metadata.error is not None:
        return {}
    ends = {}
    for p in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
        if high > low:
            ends[p] = high
    return ends


_MOVING = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE}


def _moving(exc: BaseException) -> bool:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in _MOVING)


def ensure_topics_of(admin: AdminClient, settings: KafkaSettings) -> None:
    """The catalog topics and the erasure list: compacted, one partition each (small, read
    whole by every worker)."""
    names = (settings.topic_catalog, settings.topic_people, settings.topic_groups,
             settings.topic_erasures)  # fmt: skip
    config = {"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
    ensure_topics(admin, names, 1, settings.replication_factor, config)


def publish(bootstrap: str, topic: str, record: str, upserts: Records, deletes: list[str]) -> None:
    """Publish ``upserts``, and a tombstone for each key of ``deletes``."""
    encode = Encoder(default_catalog().latest(record))
    values = {key: encode(value) for key, value in upserts.items()}
    publish_encoded(bootstrap, topic, {**values, **dict.fromkeys(deletes)})


def publish_encoded(bootstrap: str, topic: str, values: Mapping[str, bytes | None]) -> None:
    """Publish each key's value (None: a tombstone) and wait until all are delivered."""
    producer = EventProducer(bootstrap, topic)
    for key, value in values.items():
        producer.send_raw(key.encode(), value)
    producer.flush()


def sync(bootstrap: str, topic: str, record: str, wanted: Records) -> tuple[list[str], list[str]]:
    """Make the topic hold exactly ``wanted``; return (keys published, keys deleted)."""
    upserts, deletes = diff(read_topic(bootstrap, topic, record), wanted)
    publish(bootstrap, topic, record, upserts, deletes)
    return sorted(upserts), deletes
