"""Contract checks on a decoded raw event (pure). Each failure has a stable reason code.

Limits come from settings (``Limits``); the defaults are generous for Backstage traffic and
tight enough that one producer cannot bloat ClickHouse or stall a worker.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from streams.errors import StreamsError

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CONTEXT_STRINGS = ("plugin_id", "extension", "extension_id", "route_ref", "entity_ref",
                    "search_types")  # fmt: skip

REASONS = (
    "undecodable", "unknown_schema", "invalid_utf8", "oversize_message", "too_many_events",
    "missing_field", "invalid_event_id", "bad_timestamp_future", "bad_timestamp_past",
    "oversize_subject", "oversize_field", "too_many_attributes", "oversize_attribute",
    "non_finite_value",
)  # fmt: skip
"""Every reason a dead letter can carry from the streams stage."""


class ValidationError(StreamsError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 1_048_576
    max_batch_events: int = 1000
    max_subject_bytes: int = 2048
    max_field_bytes: int = 512  # action, session id, user id, context strings, source strings
    max_attributes: int = 64  # attributes and extra context keys together
    max_attribute_key_bytes: int = 128
    max_attribute_value_bytes: int = 1024
    max_future_skew_ms: int = 5 * 60_000
    max_age_ms: int = 7 * 24 * 3_600_000


def _over(text: str, limit: int) -> bool:
    """Whether ``text`` is over ``limit`` bytes in UTF-8. Callers test ``len(text) * 4 > limit``
    first (a UTF-8 character is at most 4 bytes), so short strings cost no call."""
    return (len(text) if text.isascii() else len(text.encode())) > limit


def validate(event: dict[str, Any], now_ms: int, limits: Limits) -> None:
    """Raise :class:`ValidationError` if ``event`` breaks the contract.

    Normalises ``event_id`` in place to the canonical lower-case UUID form.
    """
    event_id = event["event_id"]
    if not event_id:
        raise ValidationError("missing_field", "event_id is empty")
    if not _CANONICAL_UUID.fullmatch(event_id):
        try:
            event["event_id"] = str(uuid.UUID(event_id))
        except ValueError:
            raise ValidationError("invalid_event_id", f"not a UUID: {event_id[:64]!r}") from None
    field_limit = limits.max_field_bytes
    short = field_limit // 4  # at most this many characters cannot be over the limit
    for name in ("session_id", "action"):
        value = event[name]
        if not value:
            raise ValidationError("missing_field", f"{name} is empty")
        if len(value) > short and _over(value, field_limit):
            raise ValidationError("oversize_field", f"{name} is over {field_limit} B")
    user_id = event.get("user_id")
    if user_id and len(user_id) > short and _over(user_id, field_limit):
        raise ValidationError("oversize_field", f"user_id is over {field_limit} B")
    t = event["event_time"]
    if t > now_ms + limits.max_future_skew_ms:
        raise ValidationError("bad_timestamp_future", f"event_time {t} is {t - now_ms} ms ahead")
    if t < now_ms - limits.max_age_ms:
        raise ValidationError("bad_timestamp_past", f"event_time {t} is {now_ms - t} ms old")
    subject = event["subject"]
    if len(subject) * 4 > limits.max_subject_bytes and _over(subject, limits.max_subject_bytes):
        raise ValidationError("oversize_subject", f"subject is over {limits.max_subject_bytes} B")
    value = event.get("value")
    if value is not None and not math.isfinite(value):
        raise ValidationError("non_finite_value", f"value is {value}")
    context = event["context"]
    for name in _CONTEXT_STRINGS:
        text = context.get(name)
        if text and len(text) > short and _over(text, field_limit):
            raise ValidationError("oversize_field", f"context.{name} is over the limit")
    source = event["source"]
    for name in ("instance_id", "app_version", "backstage_version", "collector"):
        text = source.get(name)
        if text and len(text) > short and _over(text, field_limit):
            raise ValidationError("oversize_field", f"source.{name} is over the limit")
    attributes = event.get("attributes") or {}
    extra = context.get("extra") or {}
    if len(attributes) + len(extra) > limits.max_attributes:
        raise ValidationError(
            "too_many_attributes",
            f"{len(attributes) + len(extra)} attributes, at most {limits.max_attributes}",
        )
    key_limit, value_limit = limits.max_attribute_key_bytes, limits.max_attribute_value_bytes
    for mapping in (attributes, extra):
        for key, item in mapping.items():
            if len(key) * 4 > key_limit and _over(key, key_limit):
                raise ValidationError("oversize_attribute", f"attribute key {key[:40]!r}…")
            if type(item) is str:
                if len(item) * 4 > value_limit and _over(item, value_limit):
                    raise ValidationError("oversize_attribute", f"attribute {key[:40]!r} value")
            elif isinstance(item, float) and not math.isfinite(item):
                raise ValidationError("non_finite_value", f"attribute {key[:40]!r} is {item}")
