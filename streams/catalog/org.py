"""People and groups from Backstage's catalog (pure): User and Group entities in; each user's
groups (direct, and every ancestor through ``spec.parent`` up to the root) and each group's
member count out, with what was inconsistent in the catalog reported, never fatal.

Refs are compared as Backstage compares them: expanded to ``kind:namespace/name`` (the default
kind is Group for ``memberOf``/``parent``/``children``, User for ``members``; the default
namespace is the entity's own) and lower-cased. Both sides of a relation count: ``memberOf``
and ``members``, ``parent`` and ``children``, and the stitched ``relations`` the catalog API
returns. A user is published under the keyed hash of their ref (the collector's), never the
ref itself.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from streams.catalog import CatalogError

# Backstage's default validators (catalog-model KubernetesValidatorFunctions).
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_NAMESPACE = re.compile(r"^[a-z0-9]+(?:-+[a-z0-9]+)*$")
ORG_KINDS = ("user", "group")
MAX_REPORTED = 20  # examples per finding in a report; the counts are complete


class _Metadata(BaseModel):
    name: str = Field(min_length=1, max_length=63, pattern=_NAME.pattern)
    namespace: str = Field("default", min_length=1, max_length=63)
    title: str | None = None

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _NAMESPACE.match(value.lower()):
            raise ValueError(f"{value!r} is not a valid namespace")
        return value


class _Profile(BaseModel):
    displayName: str | None = None


class _Relation(BaseModel):
    type: str
    targetRef: str


class _UserSpec(BaseModel):
    memberOf: list[str] = []
    profile: _Profile | None = None


class _GroupSpec(BaseModel):
    type: str = Field(min_length=1)
    profile: _Profile | None = None
    parent: str | None = None
    children: list[str] = []
    members: list[str] = []


class _Entity(BaseModel):
    apiVersion: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    metadata: _Metadata
    spec: dict[str, Any] = {}
    relations: list[_Relation] = []


def expand(ref: str, default_kind: str, default_namespace: str) -> str:
    """``team-a`` -> ``group:default/team-a``: the full ref, lower-cased, for comparison."""
    kind, sep, rest = ref.strip().partition(":")
    if not sep:
        kind, rest = default_kind, ref.strip()
    namespace, sep, name = rest.partition("/")
    if not sep:
        namespace, name = default_namespace, rest
    # Interned: every member of a team names it, and the refs outlive the sync's reading.
    return sys.intern(f"{kind or default_kind}:{namespace or default_namespace}/{name}".lower())


@dataclass(frozen=True)
class Group:
    ref: str  # group:namespace/name, lower case
    type: str
    title: str  # spec.profile.displayName, else metadata.title, else the name


@dataclass
class Report:
    """What the catalog held and what in it did not add up (each list is complete; ``lines``
    shows the first few of each)."""

    users: int = 0
    groups: int = 0
    other_kinds: Counter[str] = field(default_factory=Counter)
    unknown_parents: list[tuple[str, str]] = field(default_factory=list)  # (group, parent)
    unknown_groups: list[tuple[str, str]] = field(default_factory=list)  # (user, group)
    unknown_children: list[tuple[str, str]] = field(default_factory=list)  # (group, child)
    unknown_members: list[tuple[str, str]] = field(default_factory=list)  # (group, user)
    cycles: list[list[str]] = field(default_factory=list)
    users_without_group: int = 0
    groups_without_members: list[str] = field(default_factory=list)

    def dedupe(self) -> None:
        for name in ("unknown_parents", "unknown_children", "unknown_groups", "unknown_members"):
            setattr(self, name, list(dict.fromkeys(getattr(self, name))))

    def lines(self) -> list[str]:
        out = [f"{self.users} users, {self.groups} groups"]
        if self.other_kinds:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.other_kinds.items()))
            out.append(f"ignored (not User or Group): {kinds}")
        pairs = lambda found: [f"{a} -> {b}" for a, b in found]  # noqa: E731
        findings = [
            ("groups whose parent does not exist", pairs(self.unknown_parents)),
            ("memberships of groups that do not exist", pairs(self.unknown_groups)),
            ("children that do not exist", pairs(self.unknown_children)),
            ("members that are not users", pairs(self.unknown_members)),
            ("parent cycles (each group counts the others as ancestors)",
             [" -> ".join([*c, c[0]]) for c in self.cycles]),
            ("groups with no members", self.groups_without_members),
        ]  # fmt: skip
        for title, items in findings:
            if items:
                shown = "; ".join(items[:MAX_REPORTED])
                more = (
                    f" (and {len(items) - MAX_REPORTED} more)" if len(items) > MAX_REPORTED else ""
                )
                out.append(f"{len(items)} {title}: {shown}{more}")
        if self.users_without_group:
            out.append(f"{self.users_without_group} users in no group (counted as '(no group)')")
        return out


@dataclass
class Org:
    """The resolved organisation: groups by ref, and each user's groups (ref -> direct?)."""

    groups: dict[str, Group]
    parents: dict[str, set[str]]  # group -> the groups directly above it
    ancestors: dict[str, frozenset[str]]  # group -> every group above it
    memberships: dict[str, dict[str, bool]]  # user ref -> {group ref: direct member}
    report: Report

    def members(self) -> dict[str, tuple[int, int]]:
        """group -> (members, direct members): distinct users in it or in any group below."""
        total: Counter[str] = Counter()
        direct: Counter[str] = Counter()
        for groups in self.memberships.values():
            total.update(groups.keys())
            direct.update(g for g, is_direct in groups.items() if is_direct)
        return {ref: (total[ref], direct[ref]) for ref in self.groups}

    def people(self, keyed: Callable[[str], str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """(keyed user id, Person record) of each user in at least one group."""
        for user, groups in self.memberships.items():
            if not groups:
                continue
            user_id = keyed(user)
            yield user_id, {
                "user_id": user_id,
                "groups": [
                    {"ref": ref, "type": self.groups[ref].type,
                     "title": self.groups[ref].title, "direct": groups[ref]}
                    for ref in sorted(groups)
                ],
            }  # fmt: skip

    def group_records(self, synced_at_ms: int) -> dict[str, dict[str, Any]]:
        """GroupInfo records by group ref: the day's snapshot of each group's population."""
        counts = self.members()
        return {
            ref: {
                "ref": ref, "type": group.type, "title": group.title,
                "parents": sorted(self.parents[ref]), "ancestors": sorted(self.ancestors[ref]),
                "members": counts[ref][0], "direct_members": counts[ref][1],
                "deleted": False, "synced_at": synced_at_ms,
            }
            for ref, group in self.groups.items()
        }  # fmt: skip


def resolve(entities: Iterable[tuple[str, dict[str, Any]]]) -> Org:
    """The org of ``(where, entity)`` pairs (``where`` names the file or URL in errors).

    Raises CatalogError on an entity that is not a valid Backstage entity, or on a User or
    Group listed twice: a catalog that cannot be read whole is not published at all.
    """
    report = Report()
    users: dict[str, list[str]] = {}  # user -> the groups it names (memberOf, relations)
    groups: dict[str, Group] = {}
    links: list[tuple[str, str]] = []  # (child, parent) named by either group
    members: list[tuple[str, str]] = []  # (group, user) named by the group
    for where, raw in entities:
        entity = _entity(where, raw)
        kind = entity.kind.lower()
        if kind not in ORG_KINDS:
            report.other_kinds[entity.kind] += 1
            continue
        ns = entity.metadata.namespace.lower()
        ref = expand(entity.metadata.name, kind, ns)
        if ref in users or ref in groups:
            raise CatalogError(f"{where}: {ref} is listed twice")
        rel = [(r.type, expand(r.targetRef, "user" if r.type == "hasMember" else "group", ns))
               for r in entity.relations]  # fmt: skip
        if kind == "user":
            spec = _spec(where, ref, _UserSpec, entity.spec)
            named = [expand(g, "group", ns) for g in spec.memberOf]
            users[ref] = named + [target for type_, target in rel if type_ == "memberOf"]
            continue
        spec = _spec(where, ref, _GroupSpec, entity.spec)
        title = (spec.profile and spec.profile.displayName) or entity.metadata.title
        groups[ref] = Group(ref, spec.type, title or entity.metadata.name)
        links += [(ref, expand(spec.parent, "group", ns))] if spec.parent else []
        links += [(expand(c, "group", ns), ref) for c in spec.children]
        links += [(ref, t) for type_, t in rel if type_ == "childOf"]
        links += [(t, ref) for type_, t in rel if type_ == "parentOf"]
        members += [(ref, expand(u, "user", ns)) for u in spec.members]
        members += [(ref, t) for type_, t in rel if type_ == "hasMember"]
    report.users, report.groups = len(users), len(groups)
    parents = _parents(groups, links, report)
    ancestors, report.cycles = _ancestors(parents)
    direct = _direct_memberships(users, groups, members, report)
    memberships = {}
    for user, own in direct.items():
        above = {a for g in own for a in ancestors[g]} - own
        memberships[user] = {**dict.fromkeys(sorted(own), True), **dict.fromkeys(above, False)}
    org = Org(groups, parents, ancestors, memberships, report)
    report.dedupe()
    report.users_without_group = sum(1 for g in memberships.values() if not g)
    report.groups_without_members = sorted(r for r, (n, _) in org.members().items() if n == 0)
    return org


def _entity(where: str, raw: Any) -> _Entity:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: not an entity (a mapping with apiVersion, kind, metadata)")
    try:
        return _Entity.model_validate(raw)
    except ValidationError as exc:
        name = (
            (raw.get("metadata") or {}).get("name")
            if isinstance(raw.get("metadata"), dict)
            else None
        )
        raise CatalogError(
            f"{where}: {raw.get('kind', '?')} {name or '?'} is not a valid entity: {_first(exc)}"
        ) from exc


def _spec(where: str, ref: str, model: type[BaseModel], spec: dict[str, Any]) -> Any:
    try:
        return model.model_validate(spec)
    except ValidationError as exc:
        raise CatalogError(f"{where}: {ref} is not a valid entity: spec {_first(exc)}") from exc


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"


def _parents(
    groups: dict[str, Group], links: list[tuple[str, str]], report: Report
) -> dict[str, set[str]]:
    """Each group's parents, from both sides; refs to groups that do not exist are reported
    and dropped."""
    parents: dict[str, set[str]] = {ref: set() for ref in groups}
    for child, parent in links:
        if parent not in groups:
            _once(report.unknown_parents, (child, parent))
        elif child not in groups:
            _once(report.unknown_children, (parent, child))
        else:
            parents[child].add(parent)
    return parents


def _once(found: list[tuple[str, str]], item: tuple[str, str]) -> None:
    found.append(item)  # de-duplicated once, at the end (``Report.dedupe``)


def _ancestors(parents: dict[str, set[str]]) -> tuple[dict[str, frozenset[str]], list[list[str]]]:
    """Every group's ancestors (reachability over ``parents``, so a cycle ends, each of its
    groups counting the others as ancestors), and the cycles found."""
    reach: dict[str, frozenset[str]] = {}  # a group in a cycle reaches itself
    for start in parents:
        seen: set[str] = set()
        stack = list(parents[start])
        while stack:
            group = stack.pop()
            if group in seen:
                continue
            seen.add(group)
            known = reach.get(group)
            if known is not None:
                seen |= known
            else:
                stack.extend(parents[group])
        reach[start] = frozenset(seen)
    return {g: r - {g} for g, r in reach.items()}, _cycles(parents, reach)


def _cycles(parents: dict[str, set[str]], reach: dict[str, frozenset[str]]) -> list[list[str]]:
    """Each set of groups that reach one another through ``parent``, as one path around it."""
    cycles: list[list[str]] = []
    placed: set[str] = set()
    for group in sorted(parents):
        if group in placed or group not in reach[group]:
            continue
        members = {g for g in reach[group] if group in reach[g]} | {group}
        placed |= members
        path, current = [group], group
        while True:
            current = min(p for p in parents[current] if p in members)
            if current == group:
                break
            if current in path:  # a smaller loop inside: report from where it starts
                path = path[path.index(current) :]
                break
            path.append(current)
        cycles.append(path)
    return cycles


def _direct_memberships(
    users: dict[str, list[str]],
    groups: dict[str, Group],
    members: list[tuple[str, str]],
    report: Report,
) -> dict[str, set[str]]:
    direct: dict[str, set[str]] = {}
    for user, named in users.items():
        direct[user] = own = set()  # a user in no group is still a user
        for group in named:
            if group in groups:
                own.add(group)
            else:
                _once(report.unknown_groups, (user, group))
    for group, user in members:
        if user in users:
            direct[user].add(group)
        else:
            _once(report.unknown_members, (group, user))
    return direct


class GroupRefs:
    """What a worker keeps of a Person record: its group refs, as one shared tuple per
    distinct set (a team's members share theirs), so 50,000 people cost little memory."""

    def __init__(self) -> None:
        self._shared: dict[tuple[str, ...], tuple[str, ...]] = {}

    def __call__(self, person: dict[str, Any]) -> tuple[str, ...]:
        refs = tuple(sorted({sys.intern(g["ref"]) for g in person["groups"]}))
        return self._shared.setdefault(refs, refs)
