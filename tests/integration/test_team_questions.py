"""The questions about people and groups against a seeded org and its traffic, each answer
computed here in Python from the records (not by the same SQL): a three-level org whose
people move teams in the middle of the range, a team dissolved, a user in two teams, a team
under the minimum size, users the catalog does not know; daily snapshots published as the
catalog sync publishes them."""

from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.identity import Pseudonymizer
from sinks.query import api, dashboard, privacy, questions
from sinks.query.guard import Guard, run_readonly
from sinks.query.server import asker
from sinks.schema.migrate import migrate
from sinks.tables import EVENT_COLUMNS, GROUP_COLUMNS
from streams.catalog.entities import entities
from streams.catalog.org import resolve
from streams.catalog.sync import group_changes
from streams.job.enrich import enrich
from streams.tools.traffic import Traffic, TrafficConfig

from .conftest import READ_TOKEN, REPO
from .test_questions import api_get, served

ORG = Path(__file__).parents[1] / "fixtures" / "org" / "org.yaml"
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
SINCE, UNTIL = TODAY - timedelta(days=7), TODAY
MOVED = TODAY - timedelta(days=3)  # ada moves to field sales; the data team is dissolved
NO_GROUP = "(no group)"
K = 5
ENGINEERING, WEB = "group:default/engineering", "group:default/web"


def org_versions():
    found = list(entities([ORG]))
    before = resolve(found)
    after = []
    for where, entity in found:
        name, kind = entity["metadata"]["name"], entity["kind"]
        if kind == "Group" and name == "data":
            continue
        entity = copy.deepcopy(entity)
        if kind == "Group" and name == "engineering":
            entity["spec"]["children"] = ["platform", "web"]
        if kind == "User" and name == "ada":
            entity["spec"]["memberOf"] = ["field"]
        after.append((where, entity))
    return before, resolve(after)


@pytest.fixture(scope="module")
def seeded(chdb_client):
    database = "teams"
    migrate(chdb_client, database)
    before, after = org_versions()
    refs = sorted(before.memberships) + [f"user:default/stranger-{i}" for i in range(5)]
    keyed = Pseudonymizer(b"t" * 32)
    traffic = Traffic(TrafficConfig(seed=9, start_ms=int((TODAY - timedelta(days=10)).timestamp()
                                                         * 1000),
                                    mean_gap_ms=10 * 86_400_000 / 9000, users=len(refs),
                                    duplicate_fraction=0))  # fmt: skip
    as_ref = dict(zip(traffic.users, refs, strict=True))
    events = []
    for i, raw in enumerate(traffic.take(9000)):
        raw["user_id"] = as_ref.get(raw["user_id"])
        e = enrich(raw, partition=0, offset=i, now_ms=raw["event_time"] + 50, pseudonymize=keyed)
        org = before if raw["event_time"] < MOVED.timestamp() * 1000 else after
        e["groups"] = sorted(org.memberships.get(raw["user_id"] or "", {}))
        e["ref"] = raw["user_id"]
        events.append(e)
    chdb_client.insert(f"{database}.events", [[e[c] for c in EVENT_COLUMNS] for e in events],
                       column_names=list(EVENT_COLUMNS))  # fmt: skip
    current: dict = {}  # a sync a day, as `catalog sync --watch` publishes
    for day in range(10, 0, -1):
        at = TODAY - timedelta(days=day) + timedelta(hours=6)
        org = before if at < MOVED else after
        at_ms = int(at.timestamp() * 1000)
        changed = group_changes(current, org.group_records(at_ms), at_ms)
        current.update(changed)
        rows = [[r[c] if c != "synced_at" else at for c in GROUP_COLUMNS] for r in changed.values()]
        chdb_client.insert(f"{database}.group_members", rows, column_names=list(GROUP_COLUMNS))
    return database, events, after


NO_FILTERS = questions.Filters()


def ask(client, database, name, filters=NO_FILTERS, **kw) -> list[dict]:
    question = questions.get(name)
    sql, params = questions.render(question, database, since=SINCE, until=UNTIL,
                                   filters=filters, **kw)  # fmt: skip
    text = run_readonly(client, sql, "JSONEachRow", params, database).decode()
    return [json.loads(line) for line in text.splitlines() if line]


def in_range(events, plugin=""):
    lo, hi = SINCE.timestamp() * 1000, UNTIL.timestamp() * 1000
    return [e for e in events if lo <= e["event_time"] < hi and plugin in ("", e["plugin_id"])]


def groups_of(e) -> list[str]:
    return e["groups"] or [NO_GROUP]


def by_group(events) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for e in events:
        for g in groups_of(e):
            out[g].append(e)
    return out


def users(events) -> set[str]:
    return {e["user_id"] for e in events if e["user_id"]}


def top_plugin(events) -> str:
    per = defaultdict(list)
    for e in events:
        per[e["plugin_id"]].append(e)
    return min(per, key=lambda p: (-len(users(per[p])), -len(per[p]), p))


def adoption(n, members):
    return round(100 * n / members, 1) if members else None


def expected_groups(org, events):
    """Every group alive at the end of the range, and every group with activity in it."""
    members = {ref: n for ref, (n, _) in org.members().items()}
    found = by_group(events)
    rows = {}
    for ref in set(members) | set(found):
        n = members.get(ref, 0 if ref == "group:default/data" else None)  # dissolved: 0
        rows[ref] = (n, found.get(ref, []))
    return rows


def test_teams_members_at_the_end_active_users_adoption_top_plugin(chdb_client, seeded):
    database, events, after = seeded
    got = {r["group_ref"]: r for r in ask(chdb_client, database, "teams", limit=100)}
    expected = expected_groups(after, in_range(events))
    assert set(got) == set(expected)
    for ref, (members, evs) in expected.items():
        row = got[ref]
        assert row["members"] == members, ref
        assert row["active_users"] == len(users(evs)), ref
        assert row["adoption"] == adoption(len(users(evs)), members), ref
        assert int(row["events"]) == len(evs), ref
        assert row["top_plugin"] == (top_plugin(evs) if evs else ""), ref
    actives = [r["active_users"] for r in got.values()]
    assert actives == sorted(actives, reverse=True)
    # Ada moved: she counts in platform/web before the move and in field after it.
    ada = [e for e in events if e["ref"] == "user:default/ada"]
    assert {tuple(e["groups"]) for e in ada} == {
        ("group:default/acme", "group:default/engineering", "group:default/platform", WEB),
        ("group:default/acme", "group:default/field", "group:default/sales")}  # fmt: skip
    assert got["group:default/acme"]["members"] == 18  # at the end: data's two are in no group
    teams_only = ask(chdb_client, database, "teams",
                     questions.Filters(group_type="team"), limit=100)  # fmt: skip
    assert {r["type"] for r in teams_only} == {"team"}
    below = ask(chdb_client, database, "teams", questions.Filters(group=ENGINEERING), limit=100)
    # data was dissolved in the range; its last snapshot still places it under engineering.
    assert {r["group_ref"] for r in below} == {ENGINEERING, "group:default/platform", WEB,
                                               "group:default/data"}  # fmt: skip


def test_plugin_adoption_by_team_and_team_plugins(chdb_client, seeded):
    database, events, after = seeded
    catalog = ask(chdb_client, database, "plugin_adoption_by_team",
                  questions.Filters(plugin="catalog"), limit=100)  # fmt: skip
    expected = expected_groups(after, in_range(events, "catalog"))
    got = {r["group_ref"]: r for r in catalog}
    assert set(got) == set(expected)
    for ref, (members, evs) in expected.items():
        assert (got[ref]["members"], got[ref]["users"], int(got[ref]["events"])) == (
            members, len(users(evs)), len(evs)), ref  # fmt: skip
        assert got[ref]["adoption"] == adoption(len(users(evs)), members)
    with pytest.raises(questions.QuestionError, match="give --plugin"):
        ask(chdb_client, database, "plugin_adoption_by_team")

    mine = by_group(in_range(events))[ENGINEERING]
    got = ask(chdb_client, database, "team_plugins", questions.Filters(group=ENGINEERING),
              limit=100)  # fmt: skip
    per_plugin = defaultdict(list)
    for e in mine:
        per_plugin[e["plugin_id"]].append(e)
    engineers = after.members()[ENGINEERING][0]
    assert {r["plugin_id"]: (r["members"], r["users"], int(r["events"])) for r in got} == {
        p: (engineers, len(users(evs)), len(evs)) for p, evs in per_plugin.items()}  # fmt: skip


def test_dormant_teams_for_a_plugin(chdb_client, seeded):
    database, events, after = seeded
    plugin = "techdocs"
    used = by_group(in_range(events, plugin))
    before_range = by_group([e for e in events if e["event_time"] < SINCE.timestamp() * 1000
                             and e["plugin_id"] == plugin])  # fmt: skip
    expected = {
        ref: (n, max((datetime.fromtimestamp(e["event_time"] / 1000, UTC).date().isoformat()
                      for e in before_range[ref]), default=None))
        for ref, (n, _) in after.members().items() if n > 0 and ref not in used
    }  # fmt: skip
    got = ask(chdb_client, database, "dormant_teams", questions.Filters(plugin=plugin), limit=100)
    assert {r["group_ref"]: (r["members"], r["last_active"]) for r in got} == expected


def periods(events, step):
    """Each user's active periods (day or Monday of the week)."""

    def bucket(e):
        d = datetime.fromtimestamp(e["event_time"] / 1000, UTC).date()
        return d - timedelta(days=d.weekday()) if step == "week" else d

    out = defaultdict(set)
    for e in events:
        if e["user_id"] and e["event_time"] < UNTIL.timestamp() * 1000:
            out[e["user_id"]].add(bucket(e))
    return out


@pytest.mark.parametrize("group", ["", ENGINEERING])
@pytest.mark.parametrize("step", ["day", "week"])
def test_user_lifecycle(chdb_client, seeded, step, group):
    database, events, _ = seeded
    mine = [e for e in events if not group or group in e["groups"]]
    active = periods(mine, step)
    delta = timedelta(days=7 if step == "week" else 1)
    first = SINCE.date() - timedelta(days=SINCE.weekday()) if step == "week" else SINCE.date()
    expected = {}
    p = first
    while p < UNTIL.date():
        counts = {"new_users": 0, "returning_users": 0, "resurrecting_users": 0,
                  "dormant_users": 0}  # fmt: skip
        for seen in active.values():
            if p in seen and min(seen) == p:
                counts["new_users"] += 1
            elif p in seen and p - delta in seen:
                counts["returning_users"] += 1
            elif p in seen:
                counts["resurrecting_users"] += 1
            elif p - delta in seen:
                counts["dormant_users"] += 1
        if any(counts.values()):
            expected[p.isoformat()] = counts
        p += delta
    got = ask(chdb_client, database, "user_lifecycle", questions.Filters(group=group),
              group_by=step)  # fmt: skip
    assert {r["period"]: {k: int(v) for k, v in r.items() if k != "period"} for r in got} == (
        expected
    )


@pytest.mark.parametrize("group", ["", WEB])
def test_stickiness_is_dau_over_the_30_days_users(chdb_client, seeded, group):
    database, events, _ = seeded
    mine = [e for e in events if e["user_id"] and (not group or group in e["groups"])]
    by_day = defaultdict(set)
    for e in mine:
        by_day[datetime.fromtimestamp(e["event_time"] / 1000, UTC).date()].add(e["user_id"])
    expected = {}
    for n in range(7):
        d = SINCE.date() + timedelta(days=n)
        month = set().union(*(by_day[d - timedelta(days=i)] for i in range(30)))
        if month:
            expected[d.isoformat()] = (len(by_day[d]), len(month),
                                       round(len(by_day[d]) / len(month), 4))  # fmt: skip
    got = ask(chdb_client, database, "stickiness", questions.Filters(group=group))
    assert {r["d"]: (int(r["dau"]), int(r["mau"]), r["stickiness"]) for r in got} == expected


@pytest.mark.parametrize("group", ["", ENGINEERING])
def test_template_funnel(chdb_client, seeded, group):
    database, events, _ = seeded
    mine = [e for e in in_range(events) if e["entity_kind"] == "template"
            and (not group or group in e["groups"])]  # fmt: skip
    per = defaultdict(list)
    for e in mine:
        per[e["entity_ref"]].append(e)

    def who(evs, test):
        return len({e["user_id"] for e in evs if e["user_id"] and test(e)})

    expected = {
        t: (who(evs, lambda e: e["action"] == "navigate"),
            who(evs, lambda e: e["action"] == "click" and e["subject"].startswith("Next Step")),
            who(evs, lambda e: e["action"] == "create"),
            sum(1 for e in evs if e["action"] == "create"),
            sum(e["value"] or 0 for e in evs if e["action"] == "create"))
        for t, evs in per.items()
    }  # fmt: skip
    got = ask(chdb_client, database, "template_funnel", questions.Filters(group=group))
    assert {r["template"]: (int(r["opened"]), int(r["next_step"]), int(r["created"]),
                            int(r["runs"]), r["time_saved"]) for r in got} == expected  # fmt: skip
    assert expected and any(n for _, n, _, _, _ in expected.values())


@pytest.mark.parametrize("group_by", ["hour", "day", "total"])
def test_usage_questions_asked_about_one_group(chdb_client, seeded, group_by):
    """Every question that reads a rollup reads its per-group twin when asked about a group:
    the group's members' events, as the events themselves say."""
    database, events, _ = seeded
    mine = [e for e in in_range(events) if WEB in e["groups"]]

    def bucket(e):
        t = datetime.fromtimestamp(e["event_time"] / 1000, UTC)
        if group_by == "hour":
            return t.strftime("%Y-%m-%d %H:00:00")
        return t.date().isoformat() if group_by == "day" else SINCE.date().isoformat()

    per = defaultdict(list)
    for e in mine:
        per[bucket(e)].append(e)
    got = ask(chdb_client, database, "active_users", questions.Filters(group=WEB),
              group_by=group_by)  # fmt: skip
    assert {r["period"]: (int(r["users"]), int(r["sessions"]), int(r["events"])) for r in got} == {
        p: (len(users(evs)), len({e["session_id"] for e in evs}), len(evs))
        for p, evs in per.items()
    }  # fmt: skip
    plugins = ask(chdb_client, database, "top_plugins_by_users", questions.Filters(group=WEB),
                  limit=100)  # fmt: skip
    per_plugin = defaultdict(list)
    for e in mine:
        per_plugin[e["plugin_id"]].append(e)
    assert {r["plugin_id"]: int(r["users"]) for r in plugins} == {
        p: len(users(evs)) for p, evs in per_plugin.items()}  # fmt: skip
    searches = ask(chdb_client, database, "top_searches", questions.Filters(group=WEB), limit=100)
    terms = defaultdict(list)
    for e in mine:
        if e["action"] == "search" and e["subject"].strip():
            terms[e["subject"].strip().lower()].append(e)
    assert {r["term"]: int(r["searches"]) for r in searches} == {
        t: len(evs) for t, evs in terms.items()}  # fmt: skip


def test_the_minimum_group_size_on_every_path(chdb_client, seeded):
    """The JSON API, its CSV, the CLI's rendering and the dashboard's asker all publish the
    same withheld cells; raw SQL is not filtered."""
    database, _, _ = seeded
    server = served(chdb_client, database)
    try:
        answer = api_get(server.url, "teams", limit="100")
        rows = {r["group_ref"]: r for r in answer["rows"]}
        assert answer["min_group_size"] == K
        data = rows["group:default/data"]  # dissolved, two active people
        assert data["active_users"] is None and "active_users" in data["withheld"]
        assert rows["group:default/platform"]["withheld"] == []
        assert rows["group:default/platform"]["active_users"] > 0
        for row in answer["rows"]:  # nothing about 1 to 4 people is published
            for column in ("members", "active_users"):
                assert row[column] is None or not 0 < row[column] < K, row
        raw = ask(chdb_client, database, "teams", limit=100)
        assert answer["rows"] == privacy.withhold(questions.get("teams"), [
            {**r, "events": int(r["events"])} for r in raw], K)  # fmt: skip
        csv = api_get(server.url, "teams", limit="100", format="csv").decode()
        line = next(x for x in csv.splitlines() if x.startswith('"group:default/data"'))
        assert f'"<{K}"' in line
        assert csv.splitlines()[0].endswith('"withheld"')
        # A question about one small group: its cells are withheld too.
        small = api_get(server.url, "template_funnel", group="group:default/data")
        assert all(r["opened"] is None or r["opened"] == 0 or r["opened"] >= K
                   for r in small["rows"])  # fmt: skip
        assert small["min_group_size"] == K
    finally:
        server.stop()


def test_the_dashboard_draws_adoption_by_team_and_withholds_small_groups(chdb_client, seeded):
    database, events, after = seeded
    page = dashboard.render(asker(Guard(database), chdb_client), "7d", now=UNTIL)
    assert '<section class="chart" data-chart="adoption">' in page
    platform = by_group(in_range(events))["group:default/platform"]
    members = after.members()["group:default/platform"][0]
    assert '"x":[' in page and str(adoption(len(users(platform)), members)) in page
    assert "<td>data</td><td>team</td><td>0</td><td>&lt;5</td>" in page  # two active: withheld


def test_every_group_question_through_the_api_equals_its_published_rows(chdb_client, seeded):
    database, _, _ = seeded
    server = served(chdb_client, database)
    f = questions.Filters
    variants = [f(plugin="catalog"), f(group=ENGINEERING), f(group_type="team", plugin="search")]
    try:
        for question, filters in itertools.product(questions.QUESTIONS.values(), variants):
            if not question.people or any(not getattr(filters, n) for n in question.needs):
                continue
            group_by = "week" if question.grouped else "day"
            sql, params = questions.render(question, database, since=SINCE, until=UNTIL,
                                           group_by=group_by, filters=filters)  # fmt: skip
            output = run_readonly(chdb_client, sql, "JSON", params, database)
            _, rows = api.published(question, filters, output, K)
            answer = api_get(server.url, question.name, group_by=group_by, filters=filters,
                             group=filters.group, group_type=filters.group_type)  # fmt: skip
            assert answer["rows"] == rows, (question.name, filters)
    finally:
        server.stop()


def test_the_cli_prints_what_the_api_publishes(chdb_client, seeded):
    database, _, _ = seeded
    server = served(chdb_client, database)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PULSE_")},
           "PULSE_CLICKHOUSE_URL": f"chdb://{chdb_client.path}", "PULSE_DATABASE": database,
           "PULSE_QUERY_URL": server.url, "PULSE_QUERY_TOKEN": READ_TOKEN}  # fmt: skip

    def cli(fmt: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "sinks", "query", "teams", "--since", SINCE.isoformat(),
             "--until", UNTIL.isoformat(), "--limit", "100", "--format", fmt],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip

    try:
        table = cli("table")
        data = next(line for line in table.splitlines() if line.startswith("group:default/data"))
        assert f"<{K}" in data
        assert table.splitlines()[0].split()[:2] == ["group_ref", "title"]
        assert cli("csv") == api_get(server.url, "teams", limit="100", format="csv").decode()
        rows = [json.loads(line) for line in cli("json").splitlines()]
        assert rows == api_get(server.url, "teams", limit="100")["rows"]
    finally:
        server.stop()
