"""Enrichment of a decoded raw event into the flat EnrichedEvent record (pure)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Plugin ids that mean "no plugin known" in the two frontend systems.
UNKNOWN_PLUGIN_IDS = frozenset({"", "root", "app"})
UNKNOWN_PLUGIN = "unknown"
# The app-level extension that emits router page views (legacy / new frontend system).
APP_EXTENSIONS = frozenset({"App", "app"})


def normalise_plugin_id(plugin_id: str | None) -> str:
    pid = (plugin_id or "").strip().lower()
    return UNKNOWN_PLUGIN if pid in UNKNOWN_PLUGIN_IDS else pid


def frontend_system(declared: str, context: dict[str, Any]) -> str:
    """The shipper's word if it gave one; else inferred from which context keys are set."""
    if declared in ("LEGACY", "NEW"):
        return declared
    if context.get("extension_id"):
        return "NEW"
    if context.get("extension") or context.get("route_ref"):
        return "LEGACY"
    return "UNKNOWN"


def attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def enrich(
    raw: dict[str, Any],
    *,
    partition: int,
    offset: int,
    now_ms: int,
    pseudonymize: Callable[[str | None], str],
) -> dict[str, Any]:
    """Map one raw AnalyticsEvent to an EnrichedEvent dict.

    ``received_at`` is the collector's receipt time when it set one; for events published
    straight to Kafka (whose message timestamp is the event time) it is ``now_ms``, the time
    Pulse first processed the event, so lateness stays meaningful.
    """
    context = raw["context"]
    source = raw["source"]
    extension = context.get("extension_id") or context.get("extension") or ""
    received_at = raw.get("received_at") or now_ms
    attributes = {k: attribute_text(v) for k, v in context.get("extra", {}).items()}
    attributes.update((k, attribute_text(v)) for k, v in raw.get("attributes", {}).items())
    return {
        "event_id": raw["event_id"],
        "event_time": raw["event_time"],
        "received_at": received_at,
        "lateness_ms": received_at - raw["event_time"],
        "instance_id": source["instance_id"],
        "frontend_system": frontend_system(source["frontend_system"], context),
        "session_id": raw["session_id"],
        "user_id": pseudonymize(raw.get("user_id")),
        "plugin_id": normalise_plugin_id(context.get("plugin_id")),
        "extension": extension,
        "route_ref": context.get("route_ref") or "",
        "action": raw["action"],
        "subject": raw["subject"],
        "value": raw.get("value"),
        "attributes": attributes,
        "entity_ref": context.get("entity_ref") or "",
        "search_types": context.get("search_types") or "",
        "is_page_view": raw["action"] == "navigate" and extension in APP_EXTENSIONS,
        "source_partition": partition,
        "source_offset": offset,
    }
