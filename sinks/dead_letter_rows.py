"""A dead-letter message as a row of the ``dead_letters`` table (pure).

The streams stage and the sinks write dead letters with the header contract of
``schemas.dead_letters``; this reads it back. Missing or malformed headers never fail a row:
the row says what is known and keeps every header and the payload as they came.
"""

from __future__ import annotations

import base64
from typing import Any

from schemas.dead_letters import (
    HEADER_BATCH_INDEX,
    HEADER_DETAIL,
    HEADER_REASON,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
    HEADER_STAGE,
    REASON_ERASED,
)

COLUMNS = (
    "received_at", "stage", "reason", "detail", "source_topic", "source_partition",
    "source_offset", "batch_index", "message_key", "payload_base64", "payload_bytes", "headers",
    "dlq_partition", "dlq_offset",
)  # fmt: skip


def _int(text: str, default: int | None) -> int | None:
    try:
        return int(text)
    except ValueError:
        return default


def row(
    *,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]] | None,
    timestamp_ms: int,
    partition: int,
    offset: int,
) -> dict[str, Any]:
    texts = {k: (v or b"").decode("utf-8", "replace") for k, v in headers or []}
    payload = value or b""
    return {
        "received_at": timestamp_ms,
        "stage": texts.get(HEADER_STAGE, ""),
        "reason": texts.get(HEADER_REASON, "unknown"),
        "detail": texts.get(HEADER_DETAIL, ""),
        "source_topic": texts.get(HEADER_SOURCE_TOPIC, ""),
        "source_partition": _int(texts.get(HEADER_SOURCE_PARTITION, ""), -1),
        "source_offset": _int(texts.get(HEADER_SOURCE_OFFSET, ""), -1),
        "batch_index": _int(texts.get(HEADER_BATCH_INDEX, ""), None),
        "message_key": (key or b"").decode("utf-8", "replace"),
        "payload_base64": base64.b64encode(payload).decode(),
        "payload_bytes": len(payload),
        "headers": texts,
        "dlq_partition": partition,
        "dlq_offset": offset,
    }


def erased(row: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The row of a dead letter that names an erased person: where it was, the keyed id, and
    nothing of the message (no key, payload or headers beyond where it came from)."""
    kept = (HEADER_STAGE, HEADER_SOURCE_TOPIC, HEADER_SOURCE_PARTITION, HEADER_SOURCE_OFFSET,
            HEADER_BATCH_INDEX)  # fmt: skip
    headers = {k: v for k, v in row["headers"].items() if k in kept}
    headers |= {HEADER_REASON: REASON_ERASED, HEADER_DETAIL: user_id}
    return row | {"reason": REASON_ERASED, "detail": user_id, "message_key": "",
                  "payload_base64": "", "payload_bytes": 0, "headers": headers}  # fmt: skip
