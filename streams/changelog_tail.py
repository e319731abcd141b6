"""Completes faust's table recovery from the changelog's true end.

faust restores a table by reading each changelog partition up to the broker's high watermark.
Tansu reports that watermark as the last record *batch*'s base offset + 1, not the last
record's offset + 1 (13 records in batches of 10 and 3 give 11), so faust stops inside the last
batch and the table misses the newest writes of the keys in it. A worker that then counts on
top of that older state loses counts for good. This reads every owned changelog partition from
where faust stopped to its end, and applies the records in order; on a broker with a correct
watermark it reads nothing. The end: every record up to the reported watermark - 1 (the last
batch's base offset) has arrived, then nothing more for a moment (the rest of that batch comes
in the same fetch). Waiting for silence alone was not enough: a partition whose first fetch
came late was read as empty, and its counts were lost the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

IDLE_S = 0.3  # past the last batch's base offset, nothing new for this long: the end


def read_tails(
    bootstrap: str, starts: Iterable[tuple[str, int, int]], timeout_s: float = 30.0
) -> list[tuple[str, int, int, Any, Any]]:
    """(topic, partition, offset, key, value) of every record at or after each start offset,
    per partition in offset order; keys and values JSON-decoded (None for a tombstone)."""
    assignments = [TopicPartition(t, p, o) for t, p, o in starts]
    if not assignments:
        return []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "pulse-changelog-tail",  # never commits: assign only
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 50,
            "log_level": 3,
        }
    )
    out = []
    try:
        deadline = time.monotonic() + timeout_s
        # Offsets each partition must reach: the last batch's base offset (watermark - 1).
        owed: dict[tuple[str, int], int] = {}
        for tp in assignments:
            _, high = consumer.get_watermark_offsets(tp, timeout=max(1.0, timeout_s / 3))
            if high - 1 >= tp.offset:
                owed[(tp.topic, tp.partition)] = high - 1
        consumer.assign(assignments)
        idle_since = time.monotonic()
        while time.monotonic() < deadline and (owed or time.monotonic() - idle_since < IDLE_S):
            for msg in consumer.consume(num_messages=1000, timeout=0.1):
                if msg.error() is not None:
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"reading {msg.topic()}: {msg.error()}")
                    continue
                idle_since = time.monotonic()
                tp = (msg.topic(), msg.partition())
                if tp in owed and msg.offset() >= owed[tp]:
                    del owed[tp]
                key = json.loads(msg.key()) if msg.key() is not None else None
                value = json.loads(msg.value()) if msg.value() is not None else None
                out.append((msg.topic(), msg.partition(), msg.offset(), key, value))
        if owed:
            raise RuntimeError(f"changelog tails not read to their end in {timeout_s}s: {owed}")
    finally:
        consumer.close()
    return out
