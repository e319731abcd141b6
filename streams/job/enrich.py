"""Enrichment of a validated raw event into the flat EnrichedEvent record (pure)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from streams.job import entity_ref

# Plugin ids that mean "no plugin known" in the two frontend systems.
UNKNOWN_PLUGIN_IDS = frozenset({"", "root", "app"})
UNKNOWN_PLUGIN = "unknown"
# Page views are the app router's `navigate` events. The legacy router sends them from the
# extension `App`. The new one (frontend-app-api's RouteTracker) sends them with the extension
# whose route matched (`page:catalog`, `entity-content:catalog/overview`, ...), or from the app
# itself (`App`, `app/root`) when none did.
APP_EXTENSIONS = frozenset({"App", "app", "app/root"})
ROUTED_KINDS = frozenset({"page", "sub-page", "entity-content"})
_EXTENSION_KIND = re.compile(r"([a-z][a-z0-9-]*):")

PluginLookup = Callable[[str], dict[str, Any] | None]
# A keyed user id -> the refs of every group the user is in (direct and ancestors).
PeopleLookup = Callable[[str], tuple[str, ...] | None]


# Pure functions of one field are cached: a portal has few plugins, extensions and entities
# next to its event volume, and these run for every event. Bounded, as inputs are untrusted.
_cached = functools.lru_cache(maxsize=8192)


@_cached
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


@_cached
def extension_kind(extension_id: str | None) -> str:
    """``entity-card`` for ``entity-card:catalog/about``: new-system ids are ``kind:…``.
    Legacy extension names (``CatalogIndexPage``) have no kind."""
    if not extension_id:
        return ""
    match = _EXTENSION_KIND.match(extension_id)
    return match.group(1) if match else ""


@_cached
def _entity(ref: str | None) -> entity_ref.EntityRef:
    return entity_ref.parse(ref)


def attribute_text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def no_plugins(_: str) -> None:
    return None


def no_people(_: str) -> None:
    return None


def enrich(
    raw: dict[str, Any],
    *,
    partition: int,
    offset: int,
    now_ms: int,
    pseudonymize: Callable[[str | None], str],
    plugins: PluginLookup = no_plugins,
    people: PeopleLookup = no_people,
) -> dict[str, Any]:
    """Map one raw AnalyticsEvent to an EnrichedEvent dict.

    ``received_at`` is the collector's receipt time when it set one; for events published
    straight to Kafka (whose message timestamp is the event time) it is ``now_ms``, the time
    Pulse first processed the event, so lateness stays meaningful.
    """
    context = raw["context"]
    source = raw["source"]
    attrs = raw.get("attributes") or {}
    extension_id = context.get("extension_id")
    extension = extension_id or context.get("extension") or ""
    received_at = raw.get("received_at") or now_ms
    extra = context.get("extra")
    attributes = {k: attribute_text(v) for k, v in extra.items()} if extra else {}
    for k, v in attrs.items():
        attributes[k] = v if type(v) is str else attribute_text(v)
    plugin_id = normalise_plugin_id(context.get("plugin_id"))
    info = plugins(plugin_id) if plugin_id != UNKNOWN_PLUGIN else None
    action = raw["action"]
    user_id = pseudonymize(raw.get("user_id"))
    entity = _entity(context.get("entity_ref"))
    if not entity.name and action == "navigate":
        entity = entity_ref.from_route_params(attrs)
    return {
        "event_id": raw["event_id"],
        "event_time": raw["event_time"],
        "received_at": received_at,
        "lateness_ms": received_at - raw["event_time"],
        "instance_id": source["instance_id"],
        "frontend_system": frontend_system(source["frontend_system"], context),
        "session_id": raw["session_id"],
        "user_id": user_id,
        "groups": list(people(user_id) or ()) if user_id else [],
        "user_verified": bool(user_id and raw.get("user_verified")),
        "plugin_id": plugin_id,
        "plugin_known": info is not None,
        "plugin_title": info["title"] if info else "",
        "plugin_owner": info["owner"] if info else "",
        "plugin_lifecycle": info["lifecycle"] if info else "",
        "plugin_package": info["package"] if info else "",
        "plugin_category": info["category"] if info else "",
        "extension": extension,
        "extension_kind": extension_kind(extension_id),
        "route_ref": context.get("route_ref") or "",
        "action": action,
        "subject": raw["subject"],
        "value": raw.get("value"),
        "attributes": attributes,
        "entity_ref": str(entity) if entity.name else (context.get("entity_ref") or ""),
        "entity_kind": entity.kind,
        "entity_namespace": entity.namespace,
        "entity_name": entity.name,
        "search_types": context.get("search_types") or "",
        "is_page_view": action == "navigate"
        and (extension in APP_EXTENSIONS or extension_kind(extension_id) in ROUTED_KINDS),
        "source_partition": partition,
        "source_offset": offset,
    }
