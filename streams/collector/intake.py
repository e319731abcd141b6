"""Backstage's JSON analytics events, as a browser module sends them, to the Avro contract (pure).

A request carries ``{"events": [...], "frontendSystem", "appVersion", "backstageVersion",
"collector"}``; each event is Backstage's ``AnalyticsEvent`` (action, subject, value,
attributes, context) plus what the shipper adds (``id``, ``timestamp``, ``sessionId``,
``user``). Numbers become long or double, booleans stay booleans, ``null``/undefined values
are dropped, and the context keys Backstage defines are lifted into fields. The user ref is
keyed with HMAC-SHA-256 here, so no raw ref reaches Kafka; a module that sends ``sha256:<hex>``
instead has that keyed too. The instance comes from the caller's token, never from the body,
and so does whether the user is verified (a Backstage backend's token) or only claimed.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

from streams.errors import StreamsError

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
FRONTEND_SYSTEMS = ("LEGACY", "NEW", "UNKNOWN")
# Context keys with a field of their own (camelCase as Backstage names them).
CONTEXT_FIELDS = {
    "pluginId": "plugin_id",
    "extension": "extension",
    "extensionId": "extension_id",
    "routeRef": "route_ref",
    "entityRef": "entity_ref",
    "searchTypes": "search_types",
}
MAX_TEXT = 16_384  # per string; the streams stage applies the real, configurable limits


class IntakeError(StreamsError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _text(event: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = event.get(key)
    if value is None:
        if required:
            raise IntakeError("missing_field", f"{key} is required")
        return None
    if not isinstance(value, str):
        raise IntakeError("invalid_type", f"{key} must be a string")
    if len(value) > MAX_TEXT:
        raise IntakeError("too_long", f"{key} is over {MAX_TEXT} characters")
    return value


def scalar(key: str, value: Any) -> str | int | float | bool | None:
    """An attribute or context value as Avro's string|long|double|boolean; None drops it."""
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise IntakeError("too_long", f"{key} is over {MAX_TEXT} characters")
        return value
    if isinstance(value, int):
        if not LONG_MIN <= value <= LONG_MAX:
            raise IntakeError("invalid_type", f"{key} does not fit a 64-bit integer")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise IntakeError("invalid_type", f"{key} is not a finite number")
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    raise IntakeError("invalid_type", f"{key} must be a string, number or boolean")


def _mapping(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise IntakeError("invalid_type", f"{key} must be an object")
    return value


def convert(
    event: Any,
    *,
    instance_id: str,
    envelope: dict[str, Any],
    received_at: int,
    key_user: Callable[[str], str],
    verified: bool = False,
) -> dict[str, Any]:
    """One JSON event as an AnalyticsEvent record; raises :class:`IntakeError`. ``verified``:
    the sender took the user from Backstage's credentials (Pulse's backend plugin)."""
    if not isinstance(event, dict):
        raise IntakeError("invalid_type", "an event must be an object")
    event_id = _text(event, "id")
    try:
        event_id = str(uuid.UUID(event_id))
    except ValueError:
        raise IntakeError("invalid_event_id", f"id is not a UUID: {event_id[:64]!r}") from None
    timestamp = event.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise IntakeError("invalid_timestamp", "timestamp must be epoch milliseconds")
    if not 0 < timestamp < 2**53:
        raise IntakeError("invalid_timestamp", f"timestamp {timestamp} is out of range")
    value = event.get("value")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise IntakeError("invalid_type", "value must be a number")
        if not math.isfinite(value):
            raise IntakeError("invalid_type", "value is not a finite number")
    user = _text(event, "user", required=False)
    attributes = {}
    for k, v in _mapping(event, "attributes").items():
        converted = scalar(f"attributes.{k}", v)
        if converted is not None:
            attributes[str(k)] = converted
    context: dict[str, Any] = {field: None for field in CONTEXT_FIELDS.values()}
    extra = {}
    for k, v in _mapping(event, "context").items():
        field = CONTEXT_FIELDS.get(k)
        if field == "search_types" and isinstance(v, list):
            v = ",".join(str(t) for t in v)
        if field is not None:
            converted = scalar(f"context.{k}", v)
            context[field] = None if converted is None else str(converted)
        else:
            converted = scalar(f"context.{k}", v)
            if converted is not None:
                extra[str(k)] = converted
    context["extra"] = extra
    system = envelope.get("frontendSystem")
    return {
        "schema_version": 1,
        "event_id": event_id,
        "event_time": int(timestamp),
        "received_at": received_at,
        "session_id": _text(event, "sessionId"),
        "user_id": key_user(user) if user else None,
        "user_verified": verified and bool(user),
        "action": _text(event, "action"),
        "subject": _text(event, "subject"),
        "value": None if value is None else float(value),
        "attributes": attributes,
        "context": context,
        "source": {
            "instance_id": instance_id,
            "frontend_system": system if system in FRONTEND_SYSTEMS else "UNKNOWN",
            "app_version": _envelope_text(envelope, "appVersion"),
            "backstage_version": _envelope_text(envelope, "backstageVersion"),
            "collector": _envelope_text(envelope, "collector"),
        },
    }


def _envelope_text(envelope: dict[str, Any], key: str) -> str | None:
    value = envelope.get(key)
    return value[:256] if isinstance(value, str) else None
