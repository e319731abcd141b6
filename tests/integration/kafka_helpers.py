"""Kafka in tests: topics read by assignment, without a consumer group (nothing to join or
commit), and seeded traffic produced."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from streams.kafka.producer import EventProducer
from streams.tools.traffic import Traffic, TrafficConfig

from .conftest import PATIENCE


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[Message]:
    """Every message of ``topic`` from the start; waits until ``expected`` arrived, then a beat
    more so that an extra (unexpected) message is seen too."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "log_level": 3})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out: list[Message] = []
        deadline = time.monotonic() + timeout_s * PATIENCE
        settle_until = None
        while time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.2):
                if msg.error() is None:
                    out.append(msg)
            if len(out) >= expected:
                settle_until = settle_until or time.monotonic() + 1.0
                if time.monotonic() >= settle_until:
                    break
        return out
    finally:
        consumer.close()


def control_offsets(bootstrap: str, topic: str) -> int:
    """Offsets of ``topic`` that hold no message a consumer can read: transaction markers (and
    compacted records, which Pulse's output topics do not have)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "log_level": 3,
                         "isolation.level": "read_uncommitted",
                         "enable.partition.eof": True})  # fmt: skip
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in partitions}  # fmt: skip
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        seen, at_end = 0, set()
        deadline = time.monotonic() + 30 * PATIENCE
        while time.monotonic() < deadline and at_end != set(partitions):
            for m in consumer.consume(1000, timeout=0.2):
                if m.error() is None:
                    seen += 1
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
        return sum(high - low for low, high in ends.values()) - seen
    finally:
        consumer.close()


def recent_traffic(seed: int, *sizes: int) -> list[list[dict]]:
    """Seeded events of the last ten minutes, with no late ones or duplicates, in slices of
    these sizes (each slice counted once in events and windows)."""
    now = int(time.time() * 1000)
    traffic = Traffic(TrafficConfig(seed=seed, start_ms=now - 600_000, mean_gap_ms=100.0,
                                    late_fraction=0.0, duplicate_fraction=0.0))  # fmt: skip
    return [traffic.take(size) for size in sizes]


def produce(producer: EventProducer, events: list[dict]) -> None:
    """Every event sent and confirmed."""
    for event in events:
        producer.send(event)
    producer.flush()
