"""Dead letters of the job: a bad message keeps its original bytes; a bad event inside a batch
is re-encoded alone and says which index it was; an erased person's event keeps nothing but the
keyed id (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas import ANALYTICS_EVENT, Encoder, default_catalog
from schemas.dead_letters import (
    REASON_ERASED,
    STAGE_DECODE,
    STAGE_ERASURE,
    STAGE_VALIDATE,
    dead_letter_headers,
)
from streams.job.validate import ValidationError
from streams.metrics import StreamsMetrics

Headers = list[tuple[str, bytes]]


@dataclass
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: Headers
    reason: str


class Rejections:
    def __init__(self, metrics: StreamsMetrics) -> None:
        self._metrics = metrics
        self._encode_event = Encoder(default_catalog().latest(ANALYTICS_EVENT))

    def message(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        coords: dict[str, Any],
        reason: str,
        detail: str,
        stage: str = STAGE_DECODE,
    ) -> DeadLetter:
        """The whole message, as it came; ``coords``: its topic, partition and offset."""
        self._metrics.dead_letters.labels(reason).inc()
        hdrs = dead_letter_headers(headers, stage=stage, reason=reason, detail=detail, **coords)
        return DeadLetter(key, value, hdrs, reason)

    def event(
        self,
        key: bytes | None,
        raw: dict[str, Any],
        headers: Headers | None,
        coords: dict[str, Any],
        index: int,
        exc: ValidationError,
    ) -> DeadLetter:
        """One event of a batch envelope, alone."""
        self._metrics.dead_letters.labels(exc.reason).inc()
        hdrs = dead_letter_headers(
            headers, stage=STAGE_VALIDATE, reason=exc.reason, detail=exc.detail,
            batch_index=index, **coords,
        )  # fmt: skip
        try:
            value = self._encode_event(raw)
        except (ValueError, TypeError, OverflowError):  # not even re-encodable: keep the text
            value = repr(raw).encode("utf-8", "replace")
        return DeadLetter(key, value, hdrs, exc.reason)

    def erased(self, coords: dict[str, Any], index: int | None, user_id: str) -> DeadLetter:
        """An event of an erased person: where it was, and the keyed id; nothing of it."""
        self._metrics.dead_letters.labels(REASON_ERASED).inc()
        hdrs = dead_letter_headers(
            None, stage=STAGE_ERASURE, reason=REASON_ERASED, detail=user_id, batch_index=index,
            **coords,
        )  # fmt: skip
        # An empty value, not none: a message needs a key or a value (aiokafka asserts it).
        return DeadLetter(None, b"", hdrs, REASON_ERASED)
