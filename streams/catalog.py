"""The plugin catalog: PluginInfo records, from a YAML file to a compacted topic.

``python -m streams catalog sync plugins.yaml`` makes the topic hold exactly the file: new and
changed plugins are published, plugins no longer in the file get a tombstone. Workers read the
topic as a global table, so every worker sees every plugin; enrichment looks plugins up by id.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import BaseModel, Field, ValidationError, field_validator
from tenacity import Retrying, retry_if_exception_type, wait_fixed

from schemas import PLUGIN_INFO, Decoder, Encoder, SchemaError, default_catalog
from streams.errors import StreamsError
from streams.job.enrich import normalise_plugin_id
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics

log = logging.getLogger("pulse.streams.catalog")


class CatalogError(StreamsError):
    """The catalog file is invalid, or the topic could not be read or written."""


class PluginEntry(BaseModel):
    model_config = {"extra": "forbid"}

    id: str = Field(min_length=1, max_length=128)
    title: str = ""
    owner: str = ""
    lifecycle: str = ""
    package: str = ""
    category: str = ""
    tags: list[str] = []

    @field_validator("id")
    @classmethod
    def _normalise(cls, value: str) -> str:
        plugin_id = normalise_plugin_id(value)
        if plugin_id == "unknown":
            raise ValueError(f"{value!r} is not a plugin id (root/app mean 'no plugin')")
        return plugin_id


class CatalogFile(BaseModel):
    model_config = {"extra": "forbid"}

    plugins: list[PluginEntry]


def load_file(path: Path) -> dict[str, dict[str, Any]]:
    """PluginInfo records by id, from a YAML file (see deploy/catalog/plugins.yaml)."""
    try:
        document = yaml.safe_load(path.read_text())
        parsed = CatalogFile.model_validate(document)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    records: dict[str, dict[str, Any]] = {}
    for entry in parsed.plugins:
        if entry.id in records:
            raise CatalogError(f"{path}: plugin {entry.id!r} is listed twice")
        records[entry.id] = entry.model_dump()
    return records


def diff(
    current: dict[str, dict[str, Any]], wanted: dict[str, dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(records to publish, ids to delete) that turn ``current`` into ``wanted``."""
    upserts = {k: v for k, v in wanted.items() if current.get(k) != v}
    deletes = sorted(k for k in current if k not in wanted)
    return upserts, deletes


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[str, dict[str, Any]]:
    """The catalog as the compacted topic holds it now (latest value per key, tombstones
    applied), read from the beginning up to the high watermark of every partition."""
    decode = Decoder(default_catalog(), PLUGIN_INFO)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "pulse-catalog-reader",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        if metadata.error is not None:
            return {}
        ends = {}
        for p in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        records: dict[str, dict[str, Any]] = {}
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


def ensure_topic(admin: AdminClient, topic: str, replication: int = 1) -> None:
    config = {"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
    ensure_topics(admin, [topic], 1, replication, config)


def sync(
    bootstrap: str, topic: str, wanted: dict[str, dict[str, Any]]
) -> tuple[list[str], list[str]]:
    """Publish the difference; return (ids published, ids deleted)."""
    upserts, deletes = diff(read_topic(bootstrap, topic), wanted)
    encode = Encoder(default_catalog().latest(PLUGIN_INFO))
    producer = EventProducer(bootstrap, topic, encoder=encode)
    for plugin_id, record in upserts.items():
        producer.send_raw(plugin_id.encode(), encode(record))
    for plugin_id in deletes:
        producer.send_raw(plugin_id.encode(), None)
    producer.flush()
    return sorted(upserts), deletes


class CatalogReader:
    """Every worker's copy of the catalog: a thread that reads the compacted topic from the
    beginning and keeps following it (no consumer group, so every worker sees every plugin).

    Calling the reader looks a plugin up by id. faust's GlobalTable cannot serve here: its
    assignor only recognises changelog topics named after the app, not a public topic.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._plugins: dict[str, dict[str, Any]] = {}
        self._decode = Decoder(default_catalog(), PLUGIN_INFO)
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._thread = threading.Thread(target=self._run, name="catalog-reader", daemon=True)
        self.bad_entries = 0

    def __call__(self, plugin_id: str) -> dict[str, Any] | None:
        return self._plugins.get(plugin_id)

    def __len__(self) -> int:
        return len(self._plugins)

    def start(self, wait_s: float = 15.0) -> CatalogReader:
        """Start following; wait (bounded) until what the topic held at start is loaded."""
        self._thread.start()
        self._caught_up.wait(wait_s)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        consumer = Consumer(
            {"bootstrap.servers": self._bootstrap, "group.id": "unused",
             "enable.auto.commit": False, "log_level": 3}
        )  # fmt: skip
        try:
            partitions, ends = _when_readable(consumer, self._topic, self._stop)
            consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions])
            if not ends:
                self._caught_up.set()
            while not self._stop.is_set():
                for msg in consumer.consume(500, timeout=0.5):
                    if msg.error() is not None:
                        continue
                    self._apply(msg.key(), msg.value())
                    if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                        ends.pop(msg.partition(), None)
                        if not ends:
                            self._caught_up.set()
        except KafkaException as exc:
            log.error("catalog reader stopped (%s); plugins stay as last read", exc)
        finally:
            self._caught_up.set()
            consumer.close()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        plugin_id = (key or b"").decode("utf-8", "replace")
        if value is None:
            self._plugins.pop(plugin_id, None)
            return
        try:
            self._plugins[plugin_id] = self._decode(value)
        except SchemaError:
            self.bad_entries += 1  # a bad entry must not stop enrichment: the id stays unknown
            self._plugins.pop(plugin_id, None)


def _when_readable(
    consumer: Consumer, topic: str, stop: threading.Event
) -> tuple[list[int], dict[int, int]]:
    """The topic's partitions, and the end offset of each that holds anything. A partition
    whose leader is down (a node killed and not yet fenced) answers no watermark request until
    its leadership moves: ask again until ``stop``, never give up on the catalog
    (test_broker.py::test_a_worker_starts_while_a_node_of_three_is_down)."""
    return Retrying(
        retry=retry_if_exception_type(KafkaException),
        wait=wait_fixed(1),
        stop=lambda _: stop.is_set(),
        before_sleep=lambda state: log.warning(
            "catalog %s not readable yet (%s); retrying", topic,
            state.outcome.exception() if state.outcome else None,
        ),
        reraise=True,
    )(_ends, consumer, topic)  # fmt: skip


def _ends(consumer: Consumer, topic: str) -> tuple[list[int], dict[int, int]]:
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {}
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    return list(partitions), ends
