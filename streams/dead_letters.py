"""Dead-letter headers (pure): the original key, value and headers stay byte for byte."""

from __future__ import annotations

STAGE_DECODE = "decode"
STAGE_VALIDATE = "validate"


def dead_letter_headers(
    original: list[tuple[str, bytes]] | None,
    *,
    stage: str,
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
) -> list[tuple[str, bytes]]:
    headers = list(original or [])
    headers += [
        ("pulse.error.stage", stage.encode()),
        ("pulse.error.reason", reason.encode()),
        ("pulse.error.detail", detail[:1000].encode("utf-8", "replace")),
        ("pulse.source.topic", topic.encode()),
        ("pulse.source.partition", str(partition).encode()),
        ("pulse.source.offset", str(offset).encode()),
    ]
    return headers
