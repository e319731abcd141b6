"""Every saved question against a seeded dataset, each expected answer computed here in Python
from the records themselves (not by the same SQL), through the same read-only path the CLI and
the query server use."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import clickhouse_connect
import pytest

from schemas.dead_letters import dead_letter_headers
from schemas.identity import Pseudonymizer
from sinks import dead_letter_rows
from sinks.query import api, dashboard, privacy, questions, rendering
from sinks.query.guard import Guard, run_readonly
from sinks.query.server import QueryServer, asker
from sinks.query.sql import query_via_server
from sinks.schema.migrate import migrate
from sinks.tables import EVENT_COLUMNS
from streams.job.enrich import enrich
from streams.kafka.broker import free_port
from streams.tools.traffic import Traffic, TrafficConfig

from .conftest import READ_TOKEN

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
SINCE, UNTIL = TODAY - timedelta(days=7), TODAY  # whole days: rollups and events agree


@pytest.fixture(scope="module")
def dataset(chdb_client):
    database = "questions"
    migrate(chdb_client, database)
    start = int((TODAY - timedelta(days=10)).timestamp() * 1000)
    config = TrafficConfig(
        seed=5,
        start_ms=start,
        mean_gap_ms=11 * 86_400_000 / 8000,
        users=70,
        duplicate_fraction=0,
        instances=("backstage.acme.internal", "backstage.eu.acme.internal"),
    )
    pseudonymize = Pseudonymizer(b"q" * 32)
    events = [
        enrich(e, partition=0, offset=i, now_ms=e["event_time"] + 50, pseudonymize=pseudonymize)
        for i, e in enumerate(Traffic(config).take(8000))
    ]
    for e in events[::97]:
        e["user_id"] = ""  # anonymous events: counted, but not as a user
    rows = [[e[c] for c in EVENT_COLUMNS] for e in events]
    chdb_client.insert(f"{database}.events", rows, column_names=list(EVENT_COLUMNS))
    dead = []
    for i in range(40):
        headers = dead_letter_headers(
            None,
            stage=["decode", "validate"][i % 2],
            reason=["undecodable", "bad_timestamp_past", "missing_field"][i % 3],
            detail=f"case {i}",
            topic="raw",
            partition=0,
            offset=i,
        )
        t = int((TODAY - timedelta(hours=1 + i)).timestamp() * 1000)
        r = dead_letter_rows.row(
            key=b"k", value=b"v", headers=headers, timestamp_ms=t, partition=0, offset=i
        )
        dead.append(r)
    chdb_client.insert(
        f"{database}.dead_letters",
        [[r[c] for c in dead_letter_rows.COLUMNS] for r in dead],
        column_names=list(dead_letter_rows.COLUMNS),
    )
    return database, events, dead


def ask(client, database, name, **kw) -> list[dict]:
    sql, params = questions.render(
        questions.get(name), database, since=kw.pop("since", SINCE), until=kw.pop("until", UNTIL),
        **kw,
    )  # fmt: skip
    text = run_readonly(client, sql, "JSONEachRow", params, database).decode()
    return [json.loads(line) for line in text.splitlines() if line]


def in_range(events, **filters):
    lo, hi = SINCE.timestamp() * 1000, UNTIL.timestamp() * 1000
    out = [e for e in events if lo <= e["event_time"] < hi]
    for key, value in filters.items():
        out = [e for e in out if e[key] == value]
    return out


def day_of(e) -> str:
    return datetime.fromtimestamp(e["event_time"] / 1000, UTC).date().isoformat()


def usage(events) -> dict:
    return {
        "events": len(events),
        "page_views": sum(e["is_page_view"] for e in events),
        "users": len({e["user_id"] for e in events if e["user_id"]}),
        "sessions": len({e["session_id"] for e in events}),
    }


def numbers(rows, *keys) -> list[dict]:
    """JSON output quotes 64-bit integers: compare as numbers."""
    return [{k: (r[k] if k in keys else float(r[k])) for k in r} for r in rows]


def as_floats(rows: list[dict], *keys) -> list[dict]:
    return [{k: (r[k] if k in keys else float(r[k])) for k in r} for r in rows]


def test_active_users_by_day_and_in_total(chdb_client, dataset):
    database, events, _ = dataset
    by_day = defaultdict(list)
    for e in in_range(events):
        by_day[day_of(e)].append(e)
    expected = [{"period": d, **usage(by_day[d])} for d in sorted(by_day)]
    got = ask(chdb_client, database, "active_users", group_by="day")
    assert numbers(got, "period") == as_floats(expected, "period")
    [total] = ask(chdb_client, database, "active_users", group_by="total")
    assert float(total["users"]) == usage(in_range(events))["users"]
    assert float(total["events"]) == len(in_range(events))


def test_active_users_by_week_and_month_and_hour(chdb_client, dataset):
    database, events, _ = dataset
    weeks, months, hours = defaultdict(set), defaultdict(set), defaultdict(set)
    for e in in_range(events):
        if not e["user_id"]:
            continue
        d = date.fromisoformat(day_of(e))
        weeks[(d - timedelta(days=d.weekday())).isoformat()].add(e["user_id"])
        months[d.replace(day=1).isoformat()].add(e["user_id"])
        t = datetime.fromtimestamp(e["event_time"] / 1000, UTC)
        hours[t.strftime("%Y-%m-%d %H:00:00")].add(e["user_id"])
    for grouping, expected in (("week", weeks), ("month", months), ("hour", hours)):
        got = {r["period"]: int(r["users"]) for r in ask(chdb_client, database, "active_users",
                                                         group_by=grouping)}  # fmt: skip
        assert got == {k: len(v) for k, v in expected.items()}, grouping


def test_filters_narrow_the_answer(chdb_client, dataset):
    database, events, _ = dataset
    new = in_range(events, frontend_system="NEW")
    [row] = ask(chdb_client, database, "active_users", group_by="total",
                filters=questions.Filters(frontend_system="NEW"))  # fmt: skip
    assert float(row["users"]) == usage(new)["users"] < usage(in_range(events))["users"]
    got = ask(chdb_client, database, "top_extensions", filters=questions.Filters(plugin="catalog"))
    assert got and {r["plugin_id"] for r in got} == {"catalog"}


def test_new_vs_returning(chdb_client, dataset):
    database, events, _ = dataset
    first = {}
    for e in sorted(events, key=lambda e: e["event_time"]):
        if e["user_id"] and e["event_time"] < UNTIL.timestamp() * 1000:
            first.setdefault(e["user_id"], day_of(e))
    active = defaultdict(set)
    for e in in_range(events):
        if e["user_id"]:
            active[day_of(e)].add(e["user_id"])
    expected = [
        {
            "period": d,
            "new_users": sum(first[u] == d for u in users),
            "returning_users": sum(first[u] < d for u in users),
        }
        for d, users in sorted(active.items())
    ]
    got = ask(chdb_client, database, "new_vs_returning", group_by="day")
    assert numbers(got, "period") == as_floats(expected, "period")
    assert sum(r["new_users"] for r in expected) > 0 and sum(r["returning_users"] for r in expected)


def plugin_usage(events) -> list[dict]:
    by_plugin = defaultdict(list)
    for e in events:
        by_plugin[e["plugin_id"]].append(e)
    return [{"plugin_id": p, **usage(es)} for p, es in by_plugin.items()]


def test_top_plugins_by_page_views_and_by_users(chdb_client, dataset):
    database, events, _ = dataset
    rows = plugin_usage(in_range(events))
    by_views = sorted(rows, key=lambda r: (-r["page_views"], -r["users"], r["plugin_id"]))[:5]
    by_users = sorted(rows, key=lambda r: (-r["users"], -r["page_views"], r["plugin_id"]))[:5]
    got = ask(chdb_client, database, "top_plugins", limit=5)
    assert numbers(got, "plugin_id") == as_floats(by_views, "plugin_id")
    got = ask(chdb_client, database, "top_plugins_by_users", limit=5)
    assert numbers(got, "plugin_id") == as_floats(by_users, "plugin_id")


def test_identity_defaults_to_verified_when_the_range_holds_any(chdb_client):
    database = "identity"
    migrate(chdb_client, database)
    config = TrafficConfig(seed=9, start_ms=int((SINCE + timedelta(days=1)).timestamp() * 1000),
                           mean_gap_ms=60_000, users=12,
                           instances=("verified.example", "browser.example"))  # fmt: skip
    pseudonymize = Pseudonymizer(b"v" * 32)
    events = []
    for i, raw in enumerate(Traffic(config).take(600)):
        # One instance sends through Pulse's backend plugin; the other's users are claimed.
        raw["user_verified"] = raw["source"]["instance_id"] == "verified.example"
        events.append(enrich(raw, partition=0, offset=i, now_ms=raw["event_time"] + 50,
                             pseudonymize=pseudonymize))  # fmt: skip
    assert {e["user_verified"] for e in events} == {True, False}
    rows = [[e[c] for c in EVENT_COLUMNS] for e in events]
    chdb_client.insert(f"{database}.events", rows, column_names=list(EVENT_COLUMNS))

    def top(identity: str, instance: str = "") -> tuple[str, list[dict]]:
        query = {"since": [SINCE.isoformat()], "until": [UNTIL.isoformat()], "limit": ["50"],
                 "instance": [instance]}  # fmt: skip
        if identity:
            query["identity"] = [identity]
        body = json.loads(api.answer(
            "top_plugins", query, "", database,
            lambda sql, params, fmt: run_readonly(chdb_client, sql, fmt, params, database),
        ).body)  # fmt: skip
        keys = ("plugin_id", *usage([]))
        rows = sorted(({k: r[k] for k in keys} for r in body["rows"]),
                      key=lambda r: r["plugin_id"])  # fmt: skip
        return body["parameters"]["identity"], rows

    def expected(kept) -> list[dict]:
        return sorted(plugin_usage(in_range(kept)), key=lambda r: r["plugin_id"])

    verified = [e for e in events if e["user_verified"]]
    assert top("verified") == ("verified", expected(verified))
    assert top("all") == ("all", expected(events))
    assert top("") == ("verified", expected(verified))  # some are: only they count
    # An instance whose users are only claimed: nothing verified there, so everything counts.
    claimed = [e for e in events if e["instance_id"] == "browser.example"]
    assert top("", "browser.example") == ("all", expected(claimed))
    with pytest.raises(questions.QuestionError, match="identity"):
        top("trusted")


def test_plugin_trend(chdb_client, dataset):
    database, events, _ = dataset
    by_key = defaultdict(list)
    for e in in_range(events):
        by_key[(day_of(e), e["plugin_id"])].append(e)
    expected = sorted(
        ({"period": d, "plugin_id": p, **usage(es)} for (d, p), es in by_key.items()),
        key=lambda r: (r["period"], -r["events"], r["plugin_id"]),
    )
    got = ask(chdb_client, database, "plugin_trend", group_by="day")
    assert numbers(got, "period", "plugin_id") == as_floats(expected, "period", "plugin_id")


def test_instances(chdb_client, dataset):
    database, events, _ = dataset
    by_instance = defaultdict(list)
    for e in in_range(events):
        by_instance[e["instance_id"]].append(e)
    expected = sorted(
        ({"instance_id": i, **usage(es)} for i, es in by_instance.items()),
        key=lambda r: (-r["events"], r["instance_id"]),
    )
    assert len(expected) > 1
    got = ask(chdb_client, database, "instances", limit=100)
    assert numbers(got, "instance_id") == as_floats(expected, "instance_id")


def test_top_extensions(chdb_client, dataset):
    database, events, _ = dataset
    by_key = defaultdict(list)
    for e in in_range(events):
        if e["extension"]:
            by_key[(e["plugin_id"], e["extension"])].append(e)
    expected = sorted(
        ({"plugin_id": p, "extension": x, **usage(es)} for (p, x), es in by_key.items()),
        key=lambda r: (-r["events"], r["plugin_id"], r["extension"]),
    )[:10]
    got = ask(chdb_client, database, "top_extensions", limit=10)
    assert numbers(got, "plugin_id", "extension") == as_floats(expected, "plugin_id", "extension")


def test_top_templates_and_time_saved(chdb_client, dataset):
    database, events, _ = dataset
    runs = [e for e in in_range(events, plugin_id="scaffolder", action="create")]
    by_template = defaultdict(list)
    for e in runs:
        by_template[e["entity_ref"]].append(e)
    expected = sorted(
        (
            {
                "template": t,
                "runs": len(es),
                "users": len({e["user_id"] for e in es}),
                "time_saved": sum(e["value"] or 0 for e in es),
            }
            for t, es in by_template.items()
        ),
        key=lambda r: (-r["runs"], r["template"]),
    )
    got = ask(chdb_client, database, "top_templates", limit=100)
    assert expected and len(got) == len(expected)
    for g, x in zip(got, expected, strict=True):
        assert (g["template"], int(g["runs"]), int(g["users"])) == (
            x["template"], x["runs"], x["users"]
        )  # fmt: skip
        assert float(g["time_saved"]) == pytest.approx(x["time_saved"])


def test_top_techdocs_and_catalog_entities(chdb_client, dataset):
    database, events, _ = dataset
    docs = defaultdict(lambda: {"views": 0, "users": set(), "not_found": 0})
    for e in in_range(events, plugin_id="techdocs"):
        if not e["entity_ref"]:
            continue
        row = docs[e["entity_ref"]]
        if e["action"] == "navigate":
            row["views"] += 1
            row["users"].add(e["user_id"])
        row["not_found"] += e["action"] == "not-found"
    expected = sorted(
        ({"entity": k, "views": v["views"], "users": len(v["users"]), "not_found": v["not_found"]}
         for k, v in docs.items()),
        key=lambda r: (-r["views"], r["entity"]),
    )[:15]  # fmt: skip
    got = ask(chdb_client, database, "top_techdocs", limit=15)
    assert expected and numbers(got, "entity") == as_floats(expected, "entity")

    views = Counter()
    users = defaultdict(set)
    kinds = {}
    for e in in_range(events, plugin_id="catalog", action="navigate"):
        if e["entity_ref"]:
            views[e["entity_ref"]] += 1
            users[e["entity_ref"]].add(e["user_id"])
            kinds[e["entity_ref"]] = e["entity_kind"]
    expected = sorted(
        ({"entity": k, "kind": kinds[k], "views": n, "users": len(users[k])}
         for k, n in views.items()),
        key=lambda r: (-r["views"], r["entity"]),
    )[:15]  # fmt: skip
    got = ask(chdb_client, database, "top_entities", limit=15)
    assert expected and numbers(got, "entity", "kind") == as_floats(expected, "entity", "kind")


def test_searches_no_results_and_discover_rate(chdb_client, dataset):
    database, events, _ = dataset
    searches = in_range(events, action="search")
    by_term = defaultdict(list)
    for e in searches:
        by_term[e["subject"].strip(" ").lower()].append(e)
    expected = sorted(
        (
            {
                "term": t,
                "searches": len(es),
                "users": len({e["user_id"] for e in es}),
                "mean_results": round(sum(e["value"] or 0 for e in es) / len(es), 2),
            }
            for t, es in by_term.items()
            if t
        ),
        key=lambda r: (-r["searches"], r["term"]),
    )[:10]
    got = ask(chdb_client, database, "top_searches", limit=10)
    assert expected and numbers(got, "term") == as_floats(expected, "term")

    empty = defaultdict(list)
    for e in searches:
        if e["value"] == 0:
            empty[e["subject"].strip(" ").lower()].append(e)
    expected = sorted(
        ({"term": t, "searches": len(es), "users": len({e["user_id"] for e in es})}
         for t, es in empty.items() if t),
        key=lambda r: (-r["searches"], r["term"]),
    )[:10]  # fmt: skip
    got = ask(chdb_client, database, "searches_no_results", limit=10)
    assert expected and numbers(got, "term") == as_floats(expected, "term")

    per_day = defaultdict(lambda: {"s": 0, "d": 0, "rank": 0.0, "users": set()})
    for e in in_range(events):
        if e["action"] in ("search", "discover") and e["user_id"]:
            per_day[day_of(e)]["users"].add(e["user_id"])
        if e["action"] == "search":
            per_day[day_of(e)]["s"] += 1
        elif e["action"] == "discover":
            per_day[day_of(e)]["d"] += 1
            per_day[day_of(e)]["rank"] += e["value"] or 0
    expected = [
        {
            "period": d,
            "searches": v["s"],
            "discovers": v["d"],
            "discover_rate": round(v["d"] / v["s"], 4) if v["s"] else 0,
            "mean_rank": round(v["rank"] / v["d"], 2) if v["d"] else 0,
            "users": len(v["users"]),
        }
        for d, v in sorted(per_day.items())
    ]
    got = ask(chdb_client, database, "search_discover_rate", group_by="day")
    assert numbers(got, "period") == as_floats(expected, "period")


def test_dead_letters_by_reason(chdb_client, dataset):
    database, _, dead = dataset
    lo, hi = SINCE.timestamp() * 1000, UNTIL.timestamp() * 1000
    counted = Counter((r["stage"], r["reason"]) for r in dead if lo <= r["received_at"] < hi)
    got = ask(chdb_client, database, "dead_letters_by_reason")
    assert {(r["stage"], r["reason"]): int(r["messages"]) for r in got} == counted
    latest = max((r for r in dead if (r["stage"], r["reason"]) == (got[0]["stage"],
                  got[0]["reason"])), key=lambda r: r["received_at"])  # fmt: skip
    assert got[0]["last_detail"] == latest["detail"]


def test_unwindowed_events_are_what_counts_1m_lacks(chdb_client, dataset):
    """Every 13th event is one the stream could not window; the rest are in counts, some keys
    emitted twice (an older, smaller version first): the question finds exactly the 13ths."""
    database, events, _ = dataset
    windowed = [e for i, e in enumerate(events) if i % 13]
    counts: Counter = Counter(
        (e["event_time"] // 60_000 * 60_000, e["instance_id"], e["plugin_id"], e["extension"],
         e["action"]) for e in windowed
    )  # fmt: skip
    rows = []
    for n, (key, count) in enumerate(counts.items()):
        start = datetime.fromtimestamp(key[0] / 1000, UTC)
        row = [start, 60_000, *key[1:], 0, count, 0.0, 10 + n, start]
        rows.append(row)
        if n % 5 == 0 and count > 1:  # superseded by the row above (higher version)
            rows.append([*row[:7], count - 1, 0.0, n, start])
    chdb_client.insert(f"{database}.counts_1m", rows, column_names=[
        "window_start", "window_size_ms", "instance_id", "plugin_id", "extension", "action",
        "source_partition", "event_count", "value_sum", "version", "emitted_at"])  # fmt: skip
    try:
        late = Counter((day_of(e), e["instance_id"]) for e in in_range(events[::13]))
        got = ask(chdb_client, database, "unwindowed_events")
        assert {(r["day"], r["instance_id"]): int(r["unwindowed"]) for r in got if
                int(r["unwindowed"])} == late  # fmt: skip
        assert sum(int(r["events"]) for r in got) == len(in_range(events))
        one = sorted({e["instance_id"] for e in events})[0]
        got = ask(
            chdb_client, database, "unwindowed_events", filters=questions.Filters(instance=one)
        )
        assert sum(int(r["unwindowed"]) for r in got) == sum(
            n for (_, i), n in late.items() if i == one
        )
    finally:
        chdb_client.command(f"TRUNCATE TABLE {database}.counts_1m")


def test_bad_requests_are_refused_with_a_reason():
    q = questions.get("active_users")
    with pytest.raises(questions.QuestionError, match="group by"):
        questions.render(q, "db", since=SINCE, until=UNTIL, group_by="fortnight")
    with pytest.raises(questions.QuestionError, match="empty"):
        questions.render(q, "db", since=UNTIL, until=SINCE)
    with pytest.raises(questions.QuestionError, match="no question"):
        questions.get("dau")
    with pytest.raises(questions.QuestionError, match="not a time"):
        questions.parse_moment("last tuesday", TODAY)
    assert questions.parse_moment("36h", TODAY) == TODAY - timedelta(hours=36)


# Text columns of the answers (the rest compare as numbers).
TEXT = ("period", "plugin_id", "extension", "template", "entity", "kind", "term", "day", "d",
        "instance_id", "stage", "reason", "last_seen", "last_detail")  # fmt: skip


def served(chdb_client, database) -> QueryServer:
    path = chdb_client.path
    return QueryServer(
        lambda: clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database),
        "127.0.0.1", free_port(), database, read_tokens={"tests": READ_TOKEN},
    ).start()  # fmt: skip


NO_FILTERS = questions.Filters()


def api_get(url, name, *, status=200, filters=NO_FILTERS, headers=None, **params):
    """GET /v1/questions/<name> over the test's whole days; JSON, or the bytes of CSV."""
    query = {"since": SINCE.isoformat(), "until": UNTIL.isoformat(),
             "instance": filters.instance, "plugin": filters.plugin,
             "frontend_system": filters.frontend_system, "group_type": filters.group_type,
             "identity": filters.identity, **params}  # fmt: skip
    request = urllib.request.Request(
        f"{url}/v1/questions/{name}?{urllib.parse.urlencode(query)}",
        headers={"Authorization": f"Bearer {READ_TOKEN}", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            assert resp.status == status
            body = resp.read()
            csv = resp.headers["Content-Type"].startswith("text/csv")
            return body if csv else json.loads(body)
    except urllib.error.HTTPError as exc:
        assert exc.code == status, exc.read()
        return json.loads(exc.read())


def test_the_json_api_answers_as_computed_here(chdb_client, dataset):
    database, events, _ = dataset
    server = served(chdb_client, database)
    try:
        by_day = defaultdict(list)
        for e in in_range(events):
            by_day[day_of(e)].append(e)
        answer = api_get(server.url, "active_users", group_by="day")
        expected = [{"period": d, **usage(by_day[d])} for d in sorted(by_day)]
        assert [{k: r[k] for k in ("period", *usage([]))} for r in answer["rows"]] == expected
        assert all(isinstance(r["users"], int) for r in answer["rows"])  # numbers, not text
        assert [c["name"] for c in answer["columns"]][:2] == ["period", "users"]
        assert answer["parameters"]["group_by"] == "day" and answer["question"] == "active_users"
        rows = plugin_usage(in_range(events))
        top = sorted(rows, key=lambda r: (-r["page_views"], -r["users"], r["plugin_id"]))[:3]
        answer = api_get(server.url, "top_plugins", limit="3")
        assert [{k: r[k] for k in top[0]} for r in answer["rows"]] == top
        csv = api_get(server.url, "top_plugins", limit="3", headers={"Accept": "text/csv"})
        lines = csv.decode().splitlines()
        assert lines[0].startswith('"plugin_id","events"') and len(lines) == 4
        assert lines[1].startswith(f'"{top[0]["plugin_id"]}",{top[0]["events"]},')
    finally:
        server.stop()


def test_the_json_api_lists_the_questions_and_refuses_what_is_outside_their_domain(
    chdb_client, dataset
):
    database, _, _ = dataset
    server = served(chdb_client, database)
    auth = {"Authorization": f"Bearer {READ_TOKEN}"}
    try:
        request = urllib.request.Request(f"{server.url}/v1/questions", headers=auth)
        catalogue = json.loads(urllib.request.urlopen(request, timeout=30).read())
        assert [q["name"] for q in catalogue["questions"]] == list(questions.QUESTIONS)
        assert set(catalogue["parameters"]) >= {"since", "until", "group_by", "limit", "format"}
        spec = json.loads(urllib.request.urlopen(f"{server.url}/v1/openapi.json").read())
        assert set(spec["paths"]) == {"/v1/questions", "/v1/questions/{name}"}
        for name, params, reason in [
            ("dau", {}, "unknown_question"),
            ("top_plugins", {"limit": "10001"}, "bad_parameter"),
            ("top_plugins", {"limit": "ten"}, "bad_parameter"),
            ("active_users", {"group_by": "fortnight"}, "bad_parameter"),
            ("active_users", {"since": UNTIL.isoformat(), "until": SINCE.isoformat()},
             "bad_parameter"),
            ("active_users", {"since": "last tuesday"}, "bad_parameter"),
            ("active_users", {"frontend_system": "BOTH"}, "bad_parameter"),
            ("active_users", {"format": "xml"}, "bad_parameter"),
            ("active_users", {"lmit": "5"}, "unknown_parameter"),
        ]:  # fmt: skip
            refused = api_get(server.url, name, status=400, **params)
            assert refused["error"] == reason, (name, params, refused)
            assert "Traceback" not in refused["detail"]
    finally:
        server.stop()


def test_the_dashboard_draws_every_chart_and_escapes_the_data(chdb_client, dataset):
    # Last in this module: it adds an event to the shared dataset.
    database, events, _ = dataset
    hostile = dict(events[0], event_id="00000000-0000-4000-8000-00000000beef", action="search",
                   subject="<script>alert(1)</script>", value=0.0,
                   event_time=int((UNTIL - timedelta(hours=2)).timestamp() * 1000))  # fmt: skip
    chdb_client.insert(
        f"{database}.events",
        [[hostile[c] for c in EVENT_COLUMNS]],
        column_names=list(EVENT_COLUMNS),
    )
    page = dashboard.render(asker(Guard(database), chdb_client), "7d", now=UNTIL)
    for chart in ("usage", "plugins", "trend", "templates", "search", "dead-letters"):
        assert f'data-chart="{chart}"' in page
    # No catalog people in this dataset: adoption by team is the one empty chart.
    assert page.count('class="chart empty"') == 1
    assert '<section class="chart empty" data-chart="adoption">' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the search term, escaped
    assert "<script>alert(1)</script>" not in page
    with pytest.raises(questions.QuestionError):
        dashboard.render(asker(Guard(database), chdb_client), "forever")


def test_every_question_answers_the_same_through_every_path(chdb_client, dataset):
    """Each question, with and without each filter: the guard on chDB (checked against
    independent answers above), the query port as the CLI asks it (blank filters included),
    clickhouse-connect's HTTP client as a server-mode tool would ask it, and the JSON API (as
    JSON and as CSV)."""
    database, events, _ = dataset
    server = served(chdb_client, database)
    port = int(server.url.rsplit(":", 1)[1])
    http = clickhouse_connect.get_client(
        host="127.0.0.1", port=port, interface="http", access_token=READ_TOKEN
    )
    instance = sorted({e["instance_id"] for e in events})[0]
    f = questions.Filters
    variants = [f(), f(instance=instance), f(plugin="catalog"), f(frontend_system="NEW"),
                f(group="group:default/web"), f(identity="verified")]  # fmt: skip
    asked = Counter()
    try:
        for question in questions.QUESTIONS.values():
            groupings = ("day", "week", "hour", "total") if question.grouped else ("day",)
            for group_by, filters in itertools.product(groupings, variants):
                if any(not getattr(filters, n) for n in question.needs) or (
                    question.name == "user_lifecycle" and group_by == "total"
                ):
                    continue
                sql, params = questions.render(question, database, since=SINCE, until=UNTIL,
                                               group_by=group_by, filters=filters)  # fmt: skip
                direct = run_readonly(chdb_client, sql, "JSONEachRow", params, database)
                cli = query_via_server(server.url, sql, "JSONEachRow", params, READ_TOKEN)
                tool = http.raw_query(sql, parameters=params, fmt="JSONEachRow")
                assert direct == cli.encode() == tool, (question.name, group_by, filters)
                params_of = {"group_by": group_by, "filters": filters, "group": filters.group}
                answer = api_get(server.url, question.name, **params_of)
                csv = api_get(server.url, question.name, **params_of, format="csv")
                if privacy.applies(question, filters):  # published: withheld cells and all
                    output = run_readonly(chdb_client, sql, "JSON", params, database)
                    columns, rows = api.published(question, filters, output, 5)
                    assert answer["rows"] == rows, question.name
                    assert csv.decode() == rendering.csv_text(columns, rows, 5)
                else:
                    rows = [json.loads(line) for line in direct.decode().splitlines() if line]
                    assert numbers(answer["rows"], *TEXT) == numbers(rows, *TEXT), question.name
                    assert csv == run_readonly(chdb_client, sql, "CSVWithNames", params,
                                               database)  # fmt: skip
                asked[question.name] += 1
    finally:
        server.stop()
    assert set(asked) == set(questions.QUESTIONS)
