"""Dead letters a sink sends: rows ClickHouse rejected, and messages it cannot decode.

The original key and bytes go to the dead-letter topic with the error headers; the sink waits
for them (``flush``) before committing the offsets they came from."""

from __future__ import annotations

from confluent_kafka import Message, Producer

from schemas.dead_letters import REASON_ERASED, dead_letter_headers
from sinks.errors import DeadLetterError
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
        self._failed: list[str] = []  # delivery errors since the last flush

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
        self._producer.produce(
            self._topic, key=msg.key(), value=value, headers=headers, on_delivery=self._delivered
        )
        self._producer.poll(0)
        self._stats.add("dead_letters")

    def erased(self, msg: Message, batch_index: int | None, user_id: str) -> None:
        """An erased person's row: where it was and the keyed id; nothing of it."""
        headers = dead_letter_headers(
            None, stage=self._stage, reason=REASON_ERASED, detail=user_id, topic=msg.topic(),
            partition=msg.partition(), offset=msg.offset(), batch_index=batch_index,
        )  # fmt: skip
        self._producer.produce(self._topic, value=b"", headers=headers,
                               on_delivery=self._delivered)  # fmt: skip
        self._producer.poll(0)
        self._stats.add("dead_letters")

    def _delivered(self, error: object, _msg: Message) -> None:
        if error is not None:
            self._failed.append(str(error))

    def flush(self, timeout_s: float) -> None:
        """Until every dead letter sent is delivered; raises DeadLetterError if one failed or
        some are still undelivered after ``timeout_s`` (their offsets must not be committed)."""
        left = self._producer.flush(timeout_s)
        failed, self._failed = self._failed, []
        if left or failed:
            raise DeadLetterError(
                f"{self._stage}: {left} dead letters undelivered after {timeout_s:.0f}s, "
                f"{len(failed)} failed{': ' + failed[0] if failed else ''}"
            )

    def close(self) -> None:
        self._producer.flush(10)
        if not len(self._producer):  # else leave it to be destroyed: close() would wait on
            self._producer.close()  # the messages, and stop must not hang on a dead broker
