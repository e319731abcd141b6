"""The dead-letter contract: headers added to a message sent to ``pulse.events.dlq``.

The original key, value and headers stay byte for byte; these headers say where it came from
and why it was rejected. Shared by every stage that dead-letters (streams, sinks). Enriched
messages carry the same source headers, so a sink can tell a message forwarded twice.
"""

from __future__ import annotations

STAGE_DECODE = "decode"
STAGE_VALIDATE = "validate"
# An erased person's event: the dead letter holds no key, value or original headers, and its
# detail is the keyed user id (Erasure.v1), so the letter itself names nobody.
STAGE_ERASURE = "erasure"
REASON_ERASED = "erased"
HEADER_STAGE = "pulse.error.stage"
HEADER_REASON = "pulse.error.reason"
HEADER_DETAIL = "pulse.error.detail"
HEADER_SOURCE_TOPIC = "pulse.source.topic"
HEADER_SOURCE_PARTITION = "pulse.source.partition"
HEADER_SOURCE_OFFSET = "pulse.source.offset"
HEADER_BATCH_INDEX = "pulse.source.batch_index"


def source_headers(topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """Where a message came from: the raw (or enriched) message it was made of."""
    return [
        (HEADER_SOURCE_TOPIC, topic.encode()),
        (HEADER_SOURCE_PARTITION, str(partition).encode()),
        (HEADER_SOURCE_OFFSET, str(offset).encode()),
    ]


def dead_letter_headers(
    original: list[tuple[str, bytes]] | None,
    *,
    stage: str,
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    batch_index: int | None = None,
) -> list[tuple[str, bytes]]:
    headers = list(original or [])
    headers += [
        (HEADER_STAGE, stage.encode()),
        (HEADER_REASON, reason.encode()),
        (HEADER_DETAIL, detail[:1000].encode("utf-8", "replace")),
        *source_headers(topic, partition, offset),
    ]
    if batch_index is not None:
        headers.append((HEADER_BATCH_INDEX, str(batch_index).encode()))
    return headers
