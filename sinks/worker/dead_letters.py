"""Dead letters a sink sends: rows ClickHouse rejected, and messages it cannot decode.

The original key and bytes go to the dead-letter topic with the error headers; the sink waits
for them (``flush``) before committing the offsets they came from."""

from __future__ import annotations

from confluent_kafka import Message, Producer

from schemas.dead_letters import dead_letter_headers
from sinks.settings import SinkSettings
from sinks.worker.stats import SinkStats


class DeadLetters:
    def __init__(self, settings: SinkSettings, table: str, stats: SinkStats) -> None:
        self._producer = Producer(
            {"bootstrap.servers": settings.kafka_bootstrap, "acks": "all", "log_level": 3}
        )
        self._topic = settings.topic_dlq
        self._stage = f"sink:{table}"
        self._stats = stats

    def send(
        self,
        msg: Message,
        reason: str,
        detail: str,
        value: bytes | None = None,
        batch_index: int | None = None,
    ) -> None:
        """``value``/``batch_index``: one row of a batch envelope, sent alone."""
        headers = dead_letter_headers(
            list(msg.headers() or []),
            stage=self._stage,
            reason=reason,
            detail=detail,
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            batch_index=batch_index,
        )
        value = msg.value() if value is None else value
        self._producer.produce(self._topic, key=msg.key(), value=value, headers=headers)
        self._producer.poll(0)
        self._stats.add("dead_letters")

    def flush(self, timeout_s: float) -> None:
        self._producer.flush(timeout_s)

    def close(self) -> None:
        self._producer.flush(10)
        if not len(self._producer):  # else leave it to be destroyed: close() would wait on
            self._producer.close()  # the messages, and stop must not hang on a dead broker
