"""An org for the demo traffic's users, as Backstage entities, so the local stack shows who
uses what: one organisation, three departments, seven teams and a team of three (under the
minimum group size); every seventh person is in a second team, and a tenth of the traffic's
users are not in the catalog at all (they count as ``(no group)``)."""

from __future__ import annotations

from typing import Any

TEAMS = {  # department -> its teams
    "engineering": ["platform", "web", "mobile", "data"],
    "product": ["design", "research", "tiny"],
    "sales": ["field"],
}
TINY = 3


def entities(users: list[str]) -> list[dict[str, Any]]:
    """Group and User entities for ``users`` (entity refs such as ``user:default/x-1``)."""
    out = [_group("acme", "organization", None, "ACME Corp")]
    for department, teams in TEAMS.items():
        out.append(_group(department, "department", "acme", department.title()))
        out += [_group(team, "team", department, team.title()) for team in teams]
    teams = [t for ts in TEAMS.values() for t in ts if t != "tiny"]
    known = users[: len(users) - len(users) // 10]
    for i, ref in enumerate(known):
        member_of = ["tiny"] if i < TINY else [teams[i % len(teams)]]
        if i % 7 == 6:
            member_of.append(teams[(i + 3) % len(teams)])
        name = ref.rsplit("/", 1)[-1]
        out.append({"apiVersion": "backstage.io/v1alpha1", "kind": "User",
                    "metadata": {"name": name},
                    "spec": {"memberOf": member_of, "profile": {"displayName": name}}})  # fmt: skip
    return out


def _group(name: str, kind: str, parent: str | None, title: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind, "children": [], "profile": {"displayName": title}}
    if parent:
        spec["parent"] = parent
    return {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": name},
            "spec": spec}  # fmt: skip
