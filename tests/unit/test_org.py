"""The org model: Backstage Users and Groups to each user's groups and each group's members."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.catalog import CatalogError
from streams.catalog.entities import entities
from streams.catalog.org import GroupRefs, expand, resolve

ORG = Path(__file__).parents[1] / "fixtures" / "org" / "org.yaml"


def group(name, type_="team", parent=None, children=(), members=(), namespace=None, **spec):
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    spec = {"type": type_, "children": list(children), **spec}
    if parent:
        spec["parent"] = parent
    if members:
        spec["members"] = list(members)
    return {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": metadata,
            "spec": spec}  # fmt: skip


def user(name, *member_of, namespace=None, relations=None):
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    entity = {"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": metadata,
              "spec": {"memberOf": list(member_of)}}  # fmt: skip
    if relations:
        entity["relations"] = relations
    return entity


def org_of(*items):
    return resolve((f"test#{i}", e) for i, e in enumerate(items))


def load(path: Path):
    return resolve(entities([path]))


def test_the_fixture_org_resolves_three_levels_through_its_location():
    org = load(ORG)
    assert org.report.users == 21 and org.report.groups == 7
    members = {ref.split("/")[1]: n for ref, (n, _) in org.members().items()}
    assert members == {"acme": 20, "engineering": 14, "sales": 6, "platform": 8, "web": 6,
                       "data": 2, "field": 6}  # fmt: skip
    ada = org.memberships["user:default/ada"]
    assert ada == {"group:default/platform": True, "group:default/web": True,
                   "group:default/engineering": False, "group:default/acme": False}  # fmt: skip
    assert org.memberships["user:default/guest"] == {}
    assert org.report.users_without_group == 1
    assert org.groups["group:default/field"].title == "Field Sales"
    assert org.groups["group:default/sales"].title == "sales"  # no displayName: the name
    assert org.ancestors["group:default/field"] == {"group:default/sales", "group:default/acme"}


def test_people_records_are_keyed_and_carry_every_group_with_its_type():
    org = load(ORG)
    people = dict(org.people(lambda ref: f"k({ref})"))
    assert "k(user:default/guest)" not in people  # in no group: nothing to stamp
    record = people["k(user:default/grace)"]
    assert record["user_id"] == "k(user:default/grace)"
    assert [(g["ref"], g["type"], g["direct"]) for g in record["groups"]] == [
        ("group:default/acme", "organization", False),
        ("group:default/engineering", "department", False),
        ("group:default/platform", "team", True),
        ("group:default/web", "team", True),
    ]
    assert not any("grace" in str(v) for v in people["k(user:default/grace)"]["groups"])


def test_group_records_snapshot_members_and_parents():
    records = load(ORG).group_records(synced_at_ms=1_700_000_000_000)
    eng = records["group:default/engineering"]
    assert eng["members"] == 14 and eng["direct_members"] == 0
    assert eng["parents"] == ["group:default/acme"] and eng["ancestors"] == ["group:default/acme"]
    assert records["group:default/web"]["direct_members"] == 6
    assert eng["synced_at"] == 1_700_000_000_000 and eng["deleted"] is False


def test_refs_expand_with_the_entitys_namespace_and_compare_lower_case():
    assert expand("team-a", "group", "default") == "group:default/team-a"
    assert expand("Group:Default/Team-A", "group", "x") == "group:default/team-a"
    assert expand("ops/on-call", "group", "default") == "group:ops/on-call"
    org = org_of(
        group("On-Call", namespace="ops"),
        user("Jo", "on-call", namespace="ops"),  # short ref: the user's own namespace
        user("kim", "group:OPS/ON-CALL"),
    )
    assert set(org.memberships) == {"user:ops/jo", "user:default/kim"}
    assert org.members()["group:ops/on-call"] == (2, 2)


def test_both_sides_of_membership_and_parentage_count():
    org = org_of(
        group("dept", "department", children=["team-b"]),  # team-b names no parent itself
        group("team-a", parent="dept"),
        group("team-b", members=["user:default/lee"]),  # lee names no group itself
        user("lee"),
        user("max", "team-a"),
    )
    assert org.ancestors["group:default/team-b"] == {"group:default/dept"}
    assert org.memberships["user:default/lee"] == {"group:default/team-b": True,
                                                   "group:default/dept": False}  # fmt: skip
    assert org.members()["group:default/dept"] == (2, 0)


def test_stitched_relations_from_the_catalog_api_count():
    org = org_of(
        group("dept", "department", relations=None) | {"relations": [
            {"type": "parentOf", "targetRef": "group:default/team"}]},
        group("team") | {"relations": [{"type": "hasMember", "targetRef": "user:default/bo"},
                                       {"type": "childOf", "targetRef": "group:default/dept"}]},
        user("ann", relations=[{"type": "memberOf", "targetRef": "group:default/team"}]),
        user("bo"),
    )  # fmt: skip
    for name in ("ann", "bo"):
        assert org.memberships[f"user:default/{name}"] == {
            "group:default/team": True,
            "group:default/dept": False,
        }
    assert org.report.unknown_members == [] and org.report.unknown_parents == []


def test_a_user_in_two_teams_of_one_department_is_one_member_of_it():
    org = org_of(group("d", "department", children=["a", "b"]), group("a"), group("b"),
                 user("u", "a", "b"))  # fmt: skip
    assert org.members() == {"group:default/d": (1, 0), "group:default/a": (1, 1),
                             "group:default/b": (1, 1)}  # fmt: skip


def test_inconsistencies_are_reported_and_never_fatal():
    org = org_of(
        group("lost", parent="nowhere", children=["ghost"]),
        group("a", parent="b"),
        group("b", parent="c"),
        group("c", parent="a"),  # a cycle of three
        group("self", parent="self"),
        group("empty", parent="a"),
        user("u1", "lost", "gone"),
        user("u2", "a"),
        user("u3"),
        group("team", members=["user:default/nobody"]),
    )
    r = org.report
    assert r.unknown_parents == [("group:default/lost", "group:default/nowhere")]
    assert r.unknown_children == [("group:default/lost", "group:default/ghost")]
    assert r.unknown_groups == [("user:default/u1", "group:default/gone")]
    assert r.unknown_members == [("group:default/team", "user:default/nobody")]
    assert sorted(map(sorted, r.cycles)) == [
        ["group:default/a", "group:default/b", "group:default/c"],
        ["group:default/self"],
    ]
    assert r.users_without_group == 1
    assert "group:default/empty" in r.groups_without_members
    # In a cycle every group counts the others as ancestors, never itself.
    assert org.ancestors["group:default/a"] == {"group:default/b", "group:default/c"}
    assert org.ancestors["group:default/self"] == frozenset()
    assert org.memberships["user:default/u2"] == {"group:default/a": True,
                                                  "group:default/b": False,
                                                  "group:default/c": False}  # fmt: skip
    text = "\n".join(r.lines())
    assert "1 groups whose parent does not exist: group:default/lost -> group:default/nowh" in text
    assert "parent cycles" in text and "1 users in no group" in text


def test_other_kinds_are_counted_and_ignored():
    component = {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                 "metadata": {"name": "svc"}, "spec": {"type": "service"}}  # fmt: skip
    org = org_of(component, group("g"), user("u", "g"))
    assert org.report.other_kinds == {"Component": 1}
    assert "ignored (not User or Group): 1 Component" in org.report.lines()


@pytest.mark.parametrize(
    ("entity", "message"),
    [
        ("just text", "not an entity"),
        ({"kind": "User", "metadata": {"name": "x"}}, "User x is not a valid entity: apiVersion"),
        ({"apiVersion": "v1", "kind": "User", "metadata": {"name": "bad name!"}}, "metadata.name"),
        ({"apiVersion": "v1", "kind": "Group", "metadata": {"name": "g"}, "spec": {}},
         "group:default/g is not a valid entity: spec type"),
        ({"apiVersion": "v1", "kind": "User", "metadata": {"name": "u"},
          "spec": {"memberOf": "not-a-list"}}, "user:default/u is not a valid entity"),
        ({"apiVersion": "v1", "kind": "User", "metadata": {"name": "u", "namespace": "Bad_NS"}},
         "namespace"),
    ],
)  # fmt: skip
def test_invalid_entities_are_errors_naming_where_and_what(entity, message):
    with pytest.raises(CatalogError) as caught:
        resolve([("org.yaml#3", entity)])
    assert "org.yaml#3" in str(caught.value) and message in str(caught.value)


def test_an_entity_listed_twice_is_an_error():
    with pytest.raises(CatalogError, match="user:default/u is listed twice"):
        org_of(user("u"), user("U"))


def test_location_targets_are_followed_once_and_urls_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Location", "metadata": {"name": "l"},
         "spec": {"targets": ["./b.yaml", "./a.yaml"]}},
        group("g"),
    ]))  # fmt: skip
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(user("u", "g")))
    org = load(tmp_path / "a.yaml")
    assert org.members()["group:default/g"] == (1, 1)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Location", "metadata": {"name": "l"},
         "spec": {"target": "https://github.com/acme/org/blob/main/org.yaml"}}))  # fmt: skip
    with pytest.raises(CatalogError, match=r"c.yaml#1: Location target .* --from-backstage"):
        load(tmp_path / "c.yaml")


def test_group_refs_share_one_tuple_per_set():
    refs = GroupRefs()
    a = refs({"groups": [{"ref": "group:default/b"}, {"ref": "group:default/a"}]})
    b = refs({"groups": [{"ref": "group:default/a"}, {"ref": "group:default/b"}]})
    assert a == ("group:default/a", "group:default/b") and a is b


# A random forest (with random extra edges, which may close cycles) and random memberships:
# each group's member count is the number of users from whose direct groups it is reachable.
@settings(max_examples=60, deadline=None)
@given(
    parents=st.lists(st.integers(-1, 11), min_size=12, max_size=12),
    extra=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=4),
    users=st.lists(st.sets(st.integers(0, 11), max_size=3), max_size=15),
)
def test_member_counts_are_reachability(parents, extra, users):
    names = [f"g{i}" for i in range(12)]
    edges = {(i, p) for i, p in enumerate(parents) if p >= 0} | set(extra)
    groups = [group(n, relations=None) | {"relations": [
        {"type": "childOf", "targetRef": f"group:default/g{p}"} for (c, p) in edges if c == i]}
        for i, n in enumerate(names)]  # fmt: skip
    people = [user(f"u{j}", *[names[g] for g in sorted(gs)]) for j, gs in enumerate(users)]
    org = org_of(*groups, *people)

    def reach(start):
        seen, stack = set(), [start]
        while stack:
            node = stack.pop()
            for c, p in edges:
                if c == node and p not in seen:
                    seen.add(p)
                    stack.append(p)
        return seen

    for i, name in enumerate(names):
        expected = sum(1 for gs in users if any(i == g or i in reach(g) for g in gs))
        direct = sum(1 for gs in users if i in gs)
        assert org.members()[f"group:default/{name}"] == (expected, direct)
