"""Completes faust's table recovery from the changelog's true end.

faust restores a table by reading each changelog partition up to the broker's high watermark.
Tansu reports that watermark as the last record *batch*'s base offset + 1, not the last
record's offset + 1 (13 records in batches of 10 and 3 give 11), so faust stops inside the last
batch and the table misses the newest writes of the keys in it. A worker that then counts on
top of that older state loses counts for good. This reads every owned changelog partition from
where faust stopped until nothing more arrives, and applies the records in order; on a broker
with a correct watermark it reads nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

IDLE_S = 0.5  # nothing new for this long: the partition's end


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
            "log_level": 3,
        }
    )
    out = []
    try:
        consumer.assign(assignments)
        deadline = time.monotonic() + timeout_s
        idle_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - idle_since < IDLE_S:
            for msg in consumer.consume(num_messages=1000, timeout=0.1):
                if msg.error() is not None:
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"reading {msg.topic()}: {msg.error()}")
                    continue
                idle_since = time.monotonic()
                key = json.loads(msg.key()) if msg.key() is not None else None
                value = json.loads(msg.value()) if msg.value() is not None else None
                out.append((msg.topic(), msg.partition(), msg.offset(), key, value))
    finally:
        consumer.close()
    return out
