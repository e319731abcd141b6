"""High-volume producer of raw events (confluent-kafka).

Key = session id (keeps a session in order, spreads load); Kafka timestamp = event time;
value = an AnalyticsEvent, or an AnalyticsEventBatch of one session's events (what collectors
ship, and far cheaper per event downstream), in Avro single-object encoding. Idempotent
producer, acks=all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from schemas import ANALYTICS_EVENT, ANALYTICS_EVENT_BATCH, Encoder, default_catalog
from streams.errors import ProduceError


class EventProducer:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        encoder: Callable[[dict[str, Any]], bytes] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        catalog = default_catalog()
        self._encode = encoder or Encoder(catalog.latest(ANALYTICS_EVENT))
        self._encode_batch = Encoder(catalog.latest(ANALYTICS_EVENT_BATCH))
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 200000,
            "log_level": 3,
        }
        conf.update(config or {})
        self._producer = Producer(conf)
        self.delivered = 0
        self.failed: list[str] = []

    def send(self, event: dict[str, Any]) -> None:
        self.send_raw(event["session_id"].encode(), self._encode(event), event["event_time"])

    def send_batch(self, events: list[dict[str, Any]]) -> None:
        """One message holding the events of one session (in their order)."""
        session = events[0]["session_id"]
        if any(e["session_id"] != session for e in events):
            raise ValueError("a batch envelope holds the events of one session")
        value = self._encode_batch({"events": events})
        self.send_raw(session.encode(), value, events[0]["event_time"])

    def send_raw(
        self,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Publish pre-encoded bytes (replays, hostile inputs, tombstones)."""
        kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": self._on_delivery}
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        if headers:
            kwargs["headers"] = headers
        while True:
            try:
                self._producer.produce(self.topic, **kwargs)
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait for every delivery report; raise :class:`ProduceError` if any failed."""
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise ProduceError(self.topic, f"{remaining} messages undelivered after {timeout_s}s")
        if self.failed:
            raise ProduceError(self.topic, f"{len(self.failed)} failed, first: {self.failed[0]}")

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed.append(str(err))


class SessionBatcher:
    """Groups a stream of events into per-session batch envelopes of up to ``size`` events."""

    def __init__(self, producer: EventProducer, size: int) -> None:
        self._producer = producer
        self._size = size
        self._open: dict[str, list[dict[str, Any]]] = {}

    def add(self, event: dict[str, Any]) -> None:
        events = self._open.setdefault(event["session_id"], [])
        events.append(event)
        if len(events) >= self._size:
            self._producer.send_batch(self._open.pop(event["session_id"]))

    def flush(self) -> None:
        for events in self._open.values():
            self._producer.send_batch(events)
        self._open.clear()
