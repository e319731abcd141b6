"""Erasure against the real engines: a person's events and dead letters leave chDB, the rollups
they touched equal what the remaining events give (computed here in Python, independently of
the SQL), the receipt says so and ``verify`` proves it; the sets stay exact for events that land
while they are recounted; the ids land on the compacted erasure list; and through the running
pipeline, an erasure under live ingest leaves exactly everyone else's events and figures, and
full replays of the raw and enriched topics bring nothing of the person back."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import ENRICHED_EVENT_BATCH, ERASURE, Decoder, Encoder, default_catalog
from schemas.identity import Pseudonymizer
from sinks import dead_letter_rows
from sinks.erasure import mark, rollups
from sinks.erasure.eraser import Eraser
from sinks.erasure.person import Person, _avro_string
from sinks.schema.migrate import migrate
from sinks.settings import SinkSettings
from streams.catalog.topic import read_values
from streams.job.enrich import enrich
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings
from streams.tools.traffic import Traffic, TrafficConfig

from .conftest import REPO, SECRET, wait_for
from .test_broker import group_lags, kafka_cli
from .test_pipeline import query, scalar, wait_count

KEYER = Pseudonymizer(SECRET.encode())
ALICE = "user:default/Alice"
START = datetime(2026, 11, 2, 9, tzinfo=UTC)
NOW_MS = int(datetime.now(UTC).timestamp() * 1000)  # dead letters older than 30 days expire
COLUMNS = (
    "event_id", "event_time", "received_at", "instance_id", "frontend_system", "session_id",
    "user_id", "plugin_id", "extension", "action", "subject", "value", "is_page_view", "groups",
    "user_verified", "source_partition", "source_offset",
)  # fmt: skip


def alice_ids() -> list[str]:
    """Alice as the collector keys her, and as a producer's sha256 of her ref keys her."""
    sha = "sha256:" + hashlib.sha256(ALICE.lower().encode()).hexdigest()
    return [KEYER(ALICE), KEYER(sha)]


def event(user_id: str, session: str, at: datetime, plugin: str, groups: list[str],
          offset: int, verified: bool = False) -> dict:  # fmt: skip
    return {
        "event_id": uuid.uuid4(), "event_time": at, "received_at": at, "instance_id": "main",
        "frontend_system": "NEW", "session_id": session, "user_id": user_id,
        "plugin_id": plugin, "extension": "page", "action": "navigate" if offset % 3 else "click",
        "subject": "/", "value": float(offset % 4) + 0.25, "is_page_view": offset % 3 == 0,
        "groups": groups, "user_verified": verified, "source_partition": 0,
        "source_offset": offset,
    }  # fmt: skip


def corpus(rng: random.Random, n: int) -> list[dict]:
    users = [(i, [f"group:default/team-{n}"]) for n, i in enumerate(alice_ids())]
    users += [(KEYER(f"user:default/u{k}"), [f"group:default/team-{k % 3}"]) for k in range(4)]
    users += [("", [])]  # anonymous
    rows = []
    for offset in range(n):
        user_id, groups = rng.choice(users)
        session = f"s-{user_id[:6]}-{rng.randrange(2)}"
        at = START + timedelta(hours=rng.randrange(60), minutes=rng.randrange(60))
        plugin = rng.choice(["catalog", "techdocs", "search"])
        rows.append(event(user_id, session, at, plugin, groups, offset, rng.random() < 0.5))
    return rows


def insert(client, database: str, rows: list[dict]) -> None:
    client.insert(f"{database}.events", [[r[c] for c in COLUMNS] for r in rows],
                  column_names=list(COLUMNS))  # fmt: skip


def expected(rows: list[dict], rollup: rollups.Rollup) -> dict[tuple, tuple]:
    """Per key of ``rollup``: events, page views, value sum, users, sessions (Python)."""
    acc: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0, set(), set()])
    for r in rows:
        at = r["event_time"]
        bucket = (
            at.replace(minute=0, second=0, microsecond=0) if rollup.time == "hour" else at.date()
        )
        groups = (r["groups"] or ["(no group)"]) if rollup.by_group else [None]
        for group in groups:
            key = (bucket, group, r["plugin_id"], r["action"], r["user_verified"])
            a = acc[key]
            a[0] += 1
            a[1] += int(r["is_page_view"])
            a[2] += r["value"]
            if r["user_id"]:
                a[3].add(r["user_id"])
            a[4].add(r["session_id"])
    return {k: (e, p, round(v, 6), len(u), len(s)) for k, (e, p, v, u, s) in acc.items()}


def actual(client, database: str, rollup: rollups.Rollup) -> dict[tuple, tuple]:
    group = "group_ref" if rollup.by_group else "NULL"
    rows = client.query(
        f"SELECT {rollup.time}, {group}, plugin_id, action, user_verified, sum(events) AS e, "
        f"sum(page_views), round(sum(value_sum), 6), uniqExactMerge(users) AS u, "
        f"uniqExactMerge(sessions) AS s FROM {database}.{rollup.table} "
        f"GROUP BY {rollup.time}, {group}, plugin_id, action, user_verified "
        "HAVING e != 0 OR u != 0 OR s != 0"
    ).result_rows
    out = {}
    for t, g, plugin, action, verified, *figures in rows:
        bucket = t.replace(tzinfo=UTC) if rollup.time == "hour" else t
        out[(bucket, g, plugin, action, verified)] = tuple(figures)
    return out


@pytest.fixture
def sink_settings(broker, database) -> SinkSettings:
    tag = uuid.uuid4().hex[:8]
    return SinkSettings(
        database=database, kafka_bootstrap=broker.bootstrap, topic_enriched=f"enriched-{tag}",
        topic_dlq=f"dlq-{tag}", topic_people=f"people-{tag}", topic_erasures=f"erasures-{tag}",
        group_prefix=f"sink-{tag}", user_id_secret=SECRET, erasure_wait_s=60,
    )  # fmt: skip


def dead_letter(client, database: str, payload: bytes, offset: int, detail: str = "") -> None:
    headers = [("pulse.error.detail", detail.encode())]
    row = dead_letter_rows.row(key=b"k", value=payload, headers=headers, timestamp_ms=NOW_MS,
                               partition=0, offset=offset)  # fmt: skip
    client.insert(f"{database}.dead_letters", [[row[c] for c in dead_letter_rows.COLUMNS]],
                  column_names=list(dead_letter_rows.COLUMNS))  # fmt: skip


def test_an_erasure_removes_the_person_and_leaves_the_rollups_as_the_rest_give_them(
    chdb_client, database, sink_settings
):
    migrate(chdb_client, database)
    rows = corpus(random.Random(3), 600)
    for i in range(0, len(rows), 150):  # several inserts: several parts per rollup key
        insert(chdb_client, database, rows[i : i + 150])
    mine = set(alice_ids())
    # Her dead letters: a raw event naming her ref, a sink's holding her keyed id; and Bob's.
    dead_letter(chdb_client, database, b"\x00" + _avro_string(ALICE) + b"\x02", 1)
    dead_letter(chdb_client, database, b"x" + KEYER(ALICE).encode(), 2)
    dead_letter(chdb_client, database, b"\x00" + _avro_string("user:default/bob") + b"\x02", 3)
    dead_letter(chdb_client, database, b"\x00" + _avro_string(ALICE + "x") + b"\x02", 4)

    eraser = Eraser(chdb_client, sink_settings)
    person = Person.of_ref(ALICE, KEYER)
    receipt = eraser.erase(person, "test")

    rest = [r for r in rows if r["user_id"] not in mine]
    for rollup in rollups.ROLLUPS:
        assert actual(chdb_client, database, rollup) == expected(rest, rollup), rollup.table
    assert receipt.stage == "completed" and receipt.completed_at is not None
    assert receipt.rows_removed == {"events": len(rows) - len(rest), "dead_letters": 2}
    assert receipt.days == sorted({r["event_time"].date() for r in rows if r["user_id"] in mine})
    left = chdb_client.query(f"SELECT payload_base64 FROM {database}.dead_letters").result_rows
    assert sorted(base64.b64decode(p)[-2:] for (p,) in left) == [b"b\x02", b"x\x02"]
    verification = eraser.verify(person)
    assert verification.ok, verification
    assert verification.rows_left == {"events": 0, "dead_letters": 0}
    stored = chdb_client.query(
        f"SELECT user_id, stage, rows_removed FROM {database}.erasures FINAL"
    ).result_rows
    assert stored == [(KEYER(ALICE), "completed", receipt.rows_removed)]
    listed = read_values(sink_settings.kafka_bootstrap, sink_settings.topic_erasures)
    assert set(listed) == set(person.user_ids) and mine <= set(listed)
    assert not chdb_client.query(
        f"SELECT name FROM system.tables WHERE database = '{database}' AND name LIKE '\\_erasure%'"
    ).result_rows  # its working tables are gone
    # A verification notices a rollup that no longer matches events.
    chdb_client.command(f"ALTER TABLE {database}.usage_daily UPDATE events = events + 1 "
                        "WHERE 1 SETTINGS mutations_sync = 2")  # fmt: skip
    assert not eraser.verify(person).ok


def test_sets_stay_exact_for_events_landing_while_they_are_recounted(chdb_client, database):
    migrate(chdb_client, database)
    alice, bob, carol = (KEYER(f"user:default/{n}") for n in ("alice", "bob", "carol"))
    at = START
    insert(chdb_client, database, [event(alice, "sa", at, "catalog", [], 1),
                                   event(bob, "sb", at, "catalog", [], 2)])  # fmt: skip
    daily = rollups.ROLLUPS[1]
    keys, fix = "_erasure_t_keys", "_erasure_t_fix"
    params = {"ids": [alice]}
    chdb_client.command(rollups.touched(database, daily, keys), parameters=params)
    chdb_client.command(rollups.negated(database, daily), parameters=params)
    chdb_client.command(f"ALTER TABLE {database}.events DELETE WHERE user_id = '{alice}' "
                        "SETTINGS mutations_sync = 2")  # fmt: skip
    chdb_client.command(rollups.recount_table(database, daily, keys, fix))
    # Carol's event lands in the same key after the recount and before the rewrite: the rewrite
    # overwrites its part's sets with the recount, and the patch brings her back.
    insert(chdb_client, database, [event(carol, "sc", at, "catalog", [], 3)])
    chdb_client.command(
        rollups.rewrite_sets(database, daily, fix),
        settings={"mutations_sync": 2, "allow_nondeterministic_mutations": 1},
    )
    chdb_client.command(rollups.patch(database, daily, keys))
    figures = chdb_client.query(
        f"SELECT sum(events), uniqExactMerge(users), uniqExactMerge(sessions) "
        f"FROM {database}.usage_daily"
    ).result_rows
    assert figures == [(2, 2, 2)]


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(seed=st.integers(0, 10_000), blocks=st.integers(1, 6), order=st.randoms())
def test_erasure_is_exact_whatever_the_order_and_blocks_events_arrived_in(
    chdb_client, broker, seed, blocks, order
):
    database = f"t_{uuid.uuid4().hex[:12]}"
    tag = uuid.uuid4().hex[:8]
    settings_ = SinkSettings(database=database, kafka_bootstrap=broker.bootstrap,
                             topic_erasures=f"erasures-{tag}", topic_people=f"people-{tag}",
                             topic_enriched=f"e-{tag}", topic_dlq=f"d-{tag}")  # fmt: skip
    try:
        migrate(chdb_client, database)
        rows = corpus(random.Random(seed), 120)
        order.shuffle(rows)
        size = -(-len(rows) // blocks)
        for i in range(0, len(rows), size):
            insert(chdb_client, database, rows[i : i + size])
        victim = order.choice([r["user_id"] for r in rows if r["user_id"]])
        Eraser(chdb_client, settings_).erase(Person.of_id(victim), "test")
        rest = [r for r in rows if r["user_id"] != victim]
        for rollup in rollups.ROLLUPS:
            assert actual(chdb_client, database, rollup) == expected(rest, rollup), rollup.table
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {database}")


def test_the_erasure_list_holds_avro_records(broker, sink_settings):
    mark.publish(sink_settings, ("a" * 64,), "e1", START)
    listed = read_values(broker.bootstrap, sink_settings.topic_erasures)
    record = Decoder(default_catalog(), ERASURE)(listed["a" * 64])
    assert record["erasure_id"] == "e1" and record["user_id"] == "a" * 64


ADMIN = "integration-admin-token-0123456789"


def erase_cli(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sinks", "erase", *args], cwd=REPO,
        env=env.child(PULSE_QUERY_ADMIN_TOKEN=ADMIN), capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def usage(events: list[dict]) -> dict[tuple[str, str], tuple[int, int]]:
    """Per day and plugin: events and distinct users, from the produced events (Python)."""
    acc: dict[tuple[str, str], list] = defaultdict(lambda: [0, set()])
    for e in events:
        plugin = e["context"]["plugin_id"]
        plugin = plugin if plugin not in (None, "", "root", "app") else "unknown"
        day = datetime.fromtimestamp(e["event_time"] / 1000, UTC).date().isoformat()
        acc[(day, plugin)][0] += 1
        if e["user_id"]:
            acc[(day, plugin)][1].add(e["user_id"].lower())
    return {k: (n, len(users)) for k, (n, users) in acc.items()}


def stored_usage() -> dict[tuple[str, str], tuple[int, int]]:
    rows = query(
        "SELECT toString(day) AS d, plugin_id, sum(events) AS e, uniqExactMerge(users) AS u "
        "FROM pulse.usage_daily GROUP BY d, plugin_id HAVING e != 0 OR u != 0"
    )
    return {(r["d"], r["plugin_id"]): (int(r["e"]), int(r["u"])) for r in rows}


def test_an_erasure_under_live_ingest_holds_through_full_replays(pulse_env, processes, broker):
    now_ms = int(time.time() * 1000)
    config = TrafficConfig(seed=4, start_ms=now_ms - 30 * 60_000, mean_gap_ms=700.0, users=5,
                           duplicate_fraction=0.0, late_fraction=0.0)  # fmt: skip
    events = Traffic(config).take(1200)
    victim = Counter(e["user_id"] for e in events if e["user_id"]).most_common(1)[0][0]
    keyed = KEYER(victim)
    mine = [e for e in events if e["user_id"] == victim]
    rest = [e for e in events if e["user_id"] != victim]
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    raw = EventProducer(broker.bootstrap, pulse_env["PULSE_TOPIC_RAW"])
    for e in events[:600]:
        raw.send(e)
    raw.flush()
    processes.start("streams", "streams", "worker")
    processes.start("sink", "sinks", "run", PULSE_QUERY_ADMIN_TOKEN=ADMIN)
    wait_count("SELECT count() FROM pulse.events", 600, 120, "the first events in chDB")

    # The second half arrives while the person is erased, theirs among it: a quarter as the
    # eraser starts, the last quarter once the erasure is published.
    def send(part: list[dict]) -> None:
        for i, e in enumerate(part):
            raw.send(e)
            if i % 20 == 19:
                raw.flush()
        raw.flush()

    def published() -> bool:
        return keyed in read_values(broker.bootstrap, pulse_env["PULSE_TOPIC_ERASURES"])

    def live() -> None:
        send(events[600:900])
        wait_for(published, 120, "the erasure published")
        send(events[900:])

    sender = threading.Thread(target=live)
    sender.start()
    out = erase_cli(pulse_env, "--user", victim)
    sender.join()
    assert out.returncode == 0, out.stdout + out.stderr
    receipt = json.loads(out.stdout)
    assert receipt["stage"] == "completed" and receipt["user_id"] == keyed
    # Ledger: each of the person's events was deleted or dead-lettered as erased, once.
    erased = "SELECT count() FROM pulse.dead_letters WHERE reason = 'erased'"
    wait_count(erased, len(mine) - receipt["rows_removed"]["events"], 120, "the rest of theirs")
    wait_count("SELECT count() FROM pulse.events", len(rest), 120, "everyone else's events")
    assert scalar(erased) == len(mine) - receipt["rows_removed"]["events"]
    assert scalar(erased) >= sum(e["user_id"] == victim for e in events[900:])  # none stored
    assert scalar("SELECT count() FROM pulse.events") == len(rest)
    assert scalar(f"SELECT count() FROM pulse.events WHERE user_id = '{keyed}'") == 0
    assert stored_usage() == usage(rest)

    # A full replay of the raw topic: the worker's group back to the start.
    processes.stop("streams")
    kafka_cli("consumer-groups", "--bootstrap-server", broker.bootstrap, "--group",
              pulse_env["PULSE_APP_ID"], "--topic", pulse_env["PULSE_TOPIC_RAW"],
              "--reset-offsets", "--to-earliest", "--execute")  # fmt: skip
    processes.start("streams-replay", "streams", "worker")
    # Every event of theirs now has its one dead letter from the worker: those it dead-lettered
    # before are sent again with the same source, and the dead-letter sink keeps a repeat out.
    # (One the sink stopped during the erasure has the sink's letter too.)
    by_worker = f"{erased} AND stage = 'erasure'"
    wait_count(by_worker, len(mine), 120, "the replayed events of theirs dead-lettered")
    by_sink = scalar(f"{erased} AND stage = 'sink:events'")
    wait_for(lambda: set(group_lags(broker.bootstrap, pulse_env["PULSE_APP_ID"],
                                    pulse_env["PULSE_TOPIC_RAW"]).values()) == {"0"},
             120, "the replay read to the end")  # fmt: skip
    processes.stop("streams-replay")  # its last flush written
    wait_for(lambda: scalar("SELECT count() FROM pulse.events") == len(rest) and stored_usage()
             == usage(rest), 60, "the events and rollups as before the replay")  # fmt: skip

    # An enriched message holding their events next to a newcomer's: the sink keeps them out
    # and writes the other.
    keyer = Pseudonymizer(SECRET.encode())
    other = dict(events[0], event_id=str(uuid.uuid4()), user_id="user:default/newcomer")
    replayed = [enrich(e, partition=0, offset=i, now_ms=now_ms, pseudonymize=keyer)
                for i, e in enumerate([*mine[:5], other])]  # fmt: skip
    enriched = EventProducer(broker.bootstrap, pulse_env["PULSE_TOPIC_ENRICHED"])
    enriched.send_raw(b"s", Encoder(default_catalog().latest(ENRICHED_EVENT_BATCH))(
        {"events": replayed}))  # fmt: skip
    enriched.flush()
    wait_count(erased, len(mine) + by_sink + 5, 120, "the enriched replay's events of theirs")
    wait_count("SELECT count() FROM pulse.events", len(rest) + 1, 60, "the newcomer's event")
    assert stored_usage() == usage([*rest, other])
    assert (scalar(by_worker), scalar(erased)) == (len(mine), len(mine) + by_sink + 5)
    letters = query("SELECT stage, detail, payload_bytes, message_key FROM pulse.dead_letters")
    assert {tuple(r.values()) for r in letters} == {
        ("erasure", keyed, 0, ""), ("sink:events", keyed, 0, ""),
    }  # fmt: skip

    verified = erase_cli(pulse_env, "--verify", "--user", victim)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
