"""High-volume producer of raw events (confluent-kafka).

Key = session id (keeps a session in order, spreads load); Kafka timestamp = event time;
value = the AnalyticsEvent in Avro single-object encoding. Idempotent producer, acks=all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from schemas import ANALYTICS_EVENT, Encoder, default_catalog
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
        self._encode = encoder or Encoder(default_catalog().latest(ANALYTICS_EVENT))
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

    def send_raw(self, key: bytes | None, value: bytes, timestamp_ms: int | None = None) -> None:
        """Publish pre-encoded bytes (used for replays and hostile inputs)."""
        kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": self._on_delivery}
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
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
