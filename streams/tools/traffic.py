"""Seeded, realistic Backstage analytics traffic (pure: no I/O).

Users with sessions on one or more Backstage instances, both frontend systems, skewed (Zipf-like)
plugin popularity, and the documented key events: router page views (`navigate` from the
legacy app's `App` extension or the new system's matched page), link clicks, searches with
result counts (some empty), result discovery with rank, the scaffolder's funnel (a template
opened, "Next Step" clicks, `create` with minutes saved),
TechDocs `not-found`. A configurable share of events arrives late (event time minutes behind
the stream) and some are sent twice (a client retry), as in real deployments.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# (plugin id, weight, legacy extension, new-system page extension id, sample paths)
_PLUGINS: list[tuple[str, float, str, str, list[str]]] = [
    (
        "catalog",
        30,
        "CatalogIndexPage",
        "page:catalog",
        ["/catalog", "/catalog/{ns}/{kind}/{name}"],
    ),
    ("techdocs", 18, "TechDocsReaderPage", "page:techdocs", ["/docs/{ns}/{kind}/{name}"]),
    ("search", 12, "SearchPage", "page:search", ["/search"]),
    ("scaffolder", 9, "ScaffolderPage", "page:scaffolder", ["/create", "/create/templates"]),
    ("kubernetes", 6, "EntityKubernetesContent", "entity-content:kubernetes", ["/k8s"]),
    ("api-docs", 5, "ApiExplorerPage", "page:api-docs", ["/api-docs"]),
    ("github-actions", 4, "EntityGithubActionsContent", "entity-content:github-actions", ["/ci"]),
    ("tech-radar", 3, "TechRadarPage", "page:tech-radar", ["/tech-radar"]),
    ("explore", 3, "ExplorePage", "page:explore", ["/explore"]),
    ("home", 3, "HomepageCompositionRoot", "page:home", ["/home"]),
    ("cost-insights", 2, "CostInsightsPage", "page:cost-insights", ["/cost-insights"]),
    ("pagerduty", 2, "EntityPagerDutyCard", "entity-card:pagerduty", ["/pagerduty"]),
    ("sonarqube", 1.5, "EntitySonarQubeCard", "entity-card:sonarqube", ["/sonarqube"]),
    ("todo", 1, "EntityTodoContent", "entity-content:todo", ["/todo"]),
    ("user-settings", 0.5, "UserSettingsPage", "page:user-settings", ["/settings"]),
]
_ENTITIES = [
    ("component", "default", n)
    for n in ("artist-lookup", "playback-order", "shuffle-api", "wayback-archive", "podcast-api")
] + [("api", "default", "streetlights"), ("system", "audio", "audio-playback")]
_TEMPLATES = ["react-ssr-template", "springboot-template", "docs-template", "python-service"]
_SEARCH_TERMS = [
    "kafka consumer lag",
    "oncall",
    "payments api",
    "helm chart",
    "techdocs",
    "graphql",
    "terraform module",
    "grafana",
    "feature flags",
    "zzz-no-such-thing",
]
_LINKS = ["View TechDocs", "View Source", "Owner", "Open in Kubernetes", "API definition"]


@dataclass
class _Session:
    session_id: str
    user_id: str | None
    instance_id: str
    frontend_system: str
    events_left: int


@dataclass
class TrafficConfig:
    seed: int = 1
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    mean_gap_ms: float = 50.0  # mean event-time gap between consecutive events
    users: int = 200
    instances: tuple[str, ...] = ("backstage.acme.internal",)
    late_fraction: float = 0.02
    late_by_ms: tuple[int, int] = (60_000, 300_000)
    duplicate_fraction: float = 0.005
    new_system_share: float = 0.4
    collector: str = "pulse-traffic/0.1"


@dataclass
class Traffic:
    """An endless, reproducible stream of raw AnalyticsEvent dicts, in send order."""

    config: TrafficConfig = field(default_factory=TrafficConfig)

    def __post_init__(self) -> None:
        c = self.config
        self._rng = random.Random(c.seed)
        self._clock = float(c.start_ms)
        self._sessions: list[_Session] = []
        self._recent: list[dict[str, Any]] = []
        self._weights = [p[1] for p in _PLUGINS]
        self._users = [f"user:default/{self._name()}-{i}" for i in range(c.users)]

    @property
    def users(self) -> list[str]:
        """The user refs this traffic's sessions are drawn from."""
        return list(self._users)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        rng, c = self._rng, self.config
        if self._recent and rng.random() < c.duplicate_fraction:
            return dict(self._recent[rng.randrange(len(self._recent))])
        self._clock += rng.expovariate(1.0 / c.mean_gap_ms)
        event_time = int(self._clock)
        if rng.random() < c.late_fraction:
            event_time -= rng.randint(*c.late_by_ms)
        event = self._event(self._session(), event_time)
        self._recent.append(event)
        if len(self._recent) > 100:
            self._recent.pop(0)
        return dict(event)

    def take(self, n: int) -> list[dict[str, Any]]:
        return [next(self) for _ in range(n)]

    # -- internals -------------------------------------------------------------------------

    def _name(self) -> str:
        return "".join(self._rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _session(self) -> _Session:
        rng, c = self._rng, self.config
        if len(self._sessions) < max(2, c.users // 10) or rng.random() < 0.02:
            system = "NEW" if rng.random() < c.new_system_share else "LEGACY"
            self._sessions.append(
                _Session(
                    session_id=self._uuid(),
                    user_id=rng.choice(self._users) if rng.random() < 0.95 else None,
                    instance_id=rng.choice(c.instances),
                    frontend_system=system,
                    events_left=rng.randint(5, 80),
                )
            )
        session = rng.choice(self._sessions)
        session.events_left -= 1
        if session.events_left <= 0:
            self._sessions.remove(session)
        return session

    def _event(self, s: _Session, event_time: int) -> dict[str, Any]:
        rng = self._rng
        plugin, _, legacy_ext, page_ext, paths = rng.choices(_PLUGINS, self._weights)[0]
        entity = rng.choice(_ENTITIES)
        template = rng.choice(paths)
        new = s.frontend_system == "NEW"
        done = _Action(plugin, "", "", extension=page_ext if new else legacy_ext)
        _act(rng, done, entity, template, new)
        return _record(s, event_time, done, new, self._uuid(), self.config.collector)


@dataclass
class _Action:
    """What the user did, in the terms of Backstage's analytics API."""

    plugin: str
    action: str
    subject: str
    extension: str
    value: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    entity: str | None = None
    search_types: str | None = None


def _act(
    rng: random.Random, a: _Action, entity: tuple[str, str, str], template: str, new: bool
) -> None:
    """Pick the action: page views, clicks, searches, discoveries, template runs, 404s."""
    kind, ns, name = entity
    path = template.format(ns=ns, kind=kind, name=name)
    roll = rng.random()
    if roll < 0.45:
        a.action, a.subject = "navigate", path
        if not new:  # the legacy router's extension; the new one's is the matched route's
            a.extension = "App"
        elif a.extension.startswith("entity-card:"):  # cards have no route: the entity page's
            a.plugin, a.extension = "catalog", "entity-content:catalog/overview"
        if "{name}" in template:
            a.attributes = {"kind": kind, "namespace": ns, "name": name}
    elif roll < 0.70:
        a.action, a.subject = "click", rng.choice(_LINKS)
        a.attributes = {"to": f"/docs/{ns}/{kind}/{name}"}
        a.entity = f"{kind}:{ns}/{name}" if a.plugin in ("catalog", "techdocs") else None
    elif roll < 0.82:
        a.plugin, a.action = "search", "search"
        a.subject = rng.choice(_SEARCH_TERMS)
        a.value = 0.0 if a.subject.startswith("zzz") else float(rng.randint(1, 120))
        a.extension = "page:search" if new else "SearchPage"
        a.search_types = "software-catalog,techdocs"
    elif roll < 0.92:
        a.plugin, a.action = "search", "discover"
        a.subject = f"{name} | {kind}"
        a.value = float(rng.randint(1, 10))
        a.attributes = {"to": f"/catalog/{ns}/{kind}/{name}"}
        a.extension = "page:search" if new else "SearchPage"
        a.search_types = "software-catalog"
    elif roll < 0.97:  # the scaffolder's funnel: a template opened, its steps, a run
        template_name = rng.choice(_TEMPLATES)
        a.plugin, a.entity = "scaffolder", f"template:default/{template_name}"
        a.extension = "page:scaffolder" if new else "ScaffolderPage"
        step = rng.random()
        if step < 0.4:
            a.action, a.subject = "navigate", f"/create/templates/default/{template_name}"
            a.extension = "page:scaffolder" if new else "App"
        elif step < 0.7:
            a.action, a.subject = "click", f"Next Step ({rng.randint(1, 3)})"
        else:
            a.action, a.subject = "create", "Task has been created"
            a.value = float(rng.choice([5, 15, 30, 60, 120]))
            a.attributes = {"templateSteps": rng.randint(1, 6)}
    else:
        a.plugin, a.action = "techdocs", "not-found"
        a.subject = f"/docs/{ns}/{kind}/{name}/missing"
        a.attributes = {"kind": kind, "namespace": ns, "name": name}
        a.extension = "page:techdocs" if new else "TechDocsReaderPage"


def _record(
    s: _Session, event_time: int, a: _Action, new: bool, event_id: str, collector: str
) -> dict[str, Any]:
    """A raw AnalyticsEvent as the collector would send it."""
    return {
        "schema_version": 1,
        "event_id": event_id,
        "event_time": event_time,
        "received_at": None,
        "session_id": s.session_id,
        "user_id": s.user_id,
        "user_verified": False,  # a producer's claim, not Backstage's word
        "action": a.action,
        "subject": a.subject,
        "value": a.value,
        "attributes": a.attributes,
        "context": {
            "plugin_id": a.plugin,
            "extension": None if new else a.extension,
            "extension_id": a.extension if new else None,
            "route_ref": None if new else f"{a.plugin}:root",
            "entity_ref": a.entity,
            "search_types": a.search_types,
            "extra": {},
        },
        "source": {
            "instance_id": s.instance_id,
            "frontend_system": s.frontend_system,
            "app_version": "2026.11.0",
            "backstage_version": "1.49.0" if new else "1.45.0",
            "collector": collector,
        },
    }
