"""The dead-letter contract: headers added to a message sent to ``pulse.events.dlq``.

The original key, value and headers stay byte for byte; these headers say where it came from
and why it was rejected. Shared by every stage that dead-letters (streams, sinks).
"""

from __future__ import annotations

STAGE_DECODE = "decode"
STAGE_VALIDATE = "validate"
REASON = "pulse.error.reason"
BATCH_INDEX = "pulse.source.batch_index"


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
        ("pulse.error.stage", stage.encode()),
        (REASON, reason.encode()),
        ("pulse.error.detail", detail[:1000].encode("utf-8", "replace")),
        ("pulse.source.topic", topic.encode()),
        ("pulse.source.partition", str(partition).encode()),
        ("pulse.source.offset", str(offset).encode()),
    ]
    if batch_index is not None:
        headers.append((BATCH_INDEX, str(batch_index).encode()))
    return headers
