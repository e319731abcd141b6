"""Every worker's copy of a catalog topic: a thread that reads the compacted topic from the
beginning and keeps following it (no consumer group, so every worker sees every key).

faust's GlobalTable cannot serve here: its assignor only recognises changelog topics named
after the app, not a public topic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from tenacity import Retrying, retry_if_exception_type, wait_fixed

from schemas import Decoder, SchemaError, default_catalog

log = logging.getLogger("pulse.streams.catalog")
V = TypeVar("V")


class TopicTable(Generic[V]):
    """Calling the table looks a key up. ``load`` turns each decoded record into what is
    kept (by default the record itself)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        record: str,
        load: Callable[[dict[str, Any]], V] = lambda r: r,  # type: ignore[assignment,return-value]
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._entries: dict[str, V] = {}
        self._decode = Decoder(default_catalog(), record)
        self._load = load
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"table-{topic}", daemon=True)
        self.bad_entries = 0

    def __call__(self, key: str) -> V | None:
        return self._entries.get(key)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def start(self, wait_s: float = 15.0) -> TopicTable[V]:
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
            log.error("%s reader stopped (%s); entries stay as last read", self._topic, exc)
        finally:
            self._caught_up.set()
            consumer.close()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        name = (key or b"").decode("utf-8", "replace")
        if value is None:
            self._entries.pop(name, None)
            return
        try:
            self._entries[name] = self._load(self._decode(value))
        except SchemaError:
            self.bad_entries += 1  # a bad entry must not stop enrichment: the key stays unknown
            self._entries.pop(name, None)


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
            "%s not readable yet (%s); retrying", topic,
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
