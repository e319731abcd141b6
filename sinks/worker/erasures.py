"""The erased people's keyed ids, as the compacted topic ``pulse.erasures`` holds them, read up
to its end before each flush of a sink that writes what can name a person.

Read synchronously, in the flush's own thread, rather than followed in the background: an
erasure is published before its eraser waits for the sinks, so every flush that starts after
the publication sees it (one watermark request per flush), and the eraser can rely on that.
"""

from __future__ import annotations

import re
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from sinks.errors import KafkaUnavailableError
from sinks.settings import SinkSettings
from sinks.worker.consumer import asking, is_partition_end

# A keyed id as an Avro record holds it: a string of 64 hex characters after its length (64,
# zig-zag encoded). The length's bytes let the search skip to candidates: 8 times the speed of
# looking at every 64-hex run, which would cost a sink half its throughput.
_AVRO_ID = re.compile(rb"\x80\x01([0-9a-f]{64})")
_HEX64 = re.compile(rb"[0-9a-f]{64}")


def named(data: bytes, erased: frozenset[str], anywhere: bool = False) -> set[str]:
    """The erased ids ``data`` holds as an Avro string, or (``anywhere``: a dead letter, which
    may hold a ``hmac-sha256:`` value or a header's text) in any run of 64 hex characters."""
    if not erased:
        return set()
    found = (_HEX64 if anywhere else _AVRO_ID).findall(data)
    return {m.decode() for m in found if m.decode() in erased}


class ErasedIds:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self._topic = topic
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
             "enable.partition.eof": True, "log_level": 3}
        )  # fmt: skip
        self._ids: set[str] = set()
        self._positions: dict[int, int] = {}  # partition -> next offset to read
        self._current: frozenset[str] = frozenset()
        self._changed = False

    @classmethod
    def of(cls, settings: SinkSettings) -> ErasedIds:
        return cls(settings.kafka_bootstrap, settings.topic_erasures)

    def sync(self, timeout_s: float = 120.0) -> frozenset[str]:
        """Every id erased up to now: the topic read to the end it has at this call (asked
        again while a partition's leader moves). Raises KafkaUnavailableError when Kafka does
        not answer within ``timeout_s``: nothing may be written without it."""
        deadline = time.monotonic() + timeout_s
        try:
            ends = self._ends()
            while any(self._positions.get(p, 0) < end for p, end in ends.items()):
                if time.monotonic() > deadline:
                    raise KafkaUnavailableError(f"{self._topic} not read to its end in time")
                for msg in self._consumer.consume(1000, timeout=0.2):
                    self._apply(msg)
        except KafkaException as exc:
            raise KafkaUnavailableError(f"reading {self._topic}: {exc}") from exc
        if self._changed:
            self._current, self._changed = frozenset(self._ids), False
        return self._current

    def close(self) -> None:
        self._consumer.close()

    def _ends(self) -> dict[int, int]:
        """Each partition's end; partitions not assigned yet are assigned from the start."""
        if not self._positions:
            metadata = asking(lambda: self._consumer.list_topics(self._topic, timeout=10)).topics
            found = metadata.get(self._topic)
            if found is None or found.error is not None or not found.partitions:
                return {}  # nobody has been erased yet: the eraser creates the topic
            self._positions = dict.fromkeys(found.partitions, 0)
            self._consumer.assign(
                [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in self._positions]
            )
        ends = {}
        for p in self._positions:
            tp = TopicPartition(self._topic, p)
            _, high = asking(lambda: self._consumer.get_watermark_offsets(tp, 10, cached=False))  # noqa: B023
            ends[p] = high
        return ends

    def _apply(self, msg) -> None:
        error = msg.error()
        if error is not None:
            if is_partition_end(error):
                self._positions[msg.partition()] = msg.offset()
                return
            raise KafkaException(error)
        key = (msg.key() or b"").decode("utf-8", "replace")
        if msg.value() is None:
            self._ids.discard(key)
        else:
            self._ids.add(key)
        self._changed = True
        self._positions[msg.partition()] = msg.offset() + 1
