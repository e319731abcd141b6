"""The dead-letter contract: headers added to a message sent to ``pulse.events.dlq``.

The original key, value and headers stay byte for byte; these headers say where it came from
and why it was rejected. Shared by every stage that dead-letters (streams, sinks).
"""

from __future__ import annotations

STAGE_DECODE = "decode"
STAGE_VALIDATE = "validate"
HEADER_STAGE = "pulse.error.stage"
HEADER_REASON = "pulse.error.reason"
HEADER_DETAIL = "pulse.error.detail"
HEADER_SOURCE_TOPIC = "pulse.source.topic"
HEADER_SOURCE_PARTITION = "pulse.source.partition"
HEADER_SOURCE_OFFSET = "pulse.source.offset"
HEADER_BATCH_INDEX = "pulse.source.batch_index"


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
        (HEADER_SOURCE_TOPIC, topic.encode()),
        (HEADER_SOURCE_PARTITION, str(partition).encode()),
        (HEADER_SOURCE_OFFSET, str(offset).encode()),
    ]
    if batch_index is not None:
        headers.append((HEADER_BATCH_INDEX, str(batch_index).encode()))
    return headers
