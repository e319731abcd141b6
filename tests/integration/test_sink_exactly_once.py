"""Every event once in ClickHouse, whatever happens to the sinks: a sink that dies between its
insert and its commit, sink processes killed with SIGKILL during a load, a second sink joining
and leaving, dead letters into their table, rollups equal to the raw events."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time

from schemas import ENRICHED_EVENT, ENRICHED_EVENT_BATCH, Encoder, default_catalog
from schemas.dead_letters import dead_letter_headers, source_headers
from sinks.schema.migrate import migrate
from sinks.settings import SinkSettings
from sinks.tables import table_specs
from sinks.worker import TableSink
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings

from .conftest import wait_for
from .test_pipeline import scalar
from .test_sink import committed, enriched

CATALOG = default_catalog()


def envelopes(n_events: int, per: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    """(key, value) messages of ``per`` events of one session each; a few single events."""
    batch = Encoder(CATALOG.latest(ENRICHED_EVENT_BATCH))
    single = Encoder(CATALOG.latest(ENRICHED_EVENT))
    out = []
    for first in range(start, start + n_events, per):
        rows = [enriched(i) for i in range(first, min(first + per, start + n_events))]
        for r in rows:
            r["user_id"] = f"user-{r['source_offset'] % 37}"
            r["session_id"] = f"s{first}"
        key = f"s{first}".encode()
        if len(rows) == 1 or first % (per * 10) == 0:
            out.extend((key, single(r)) for r in rows)
        else:
            out.append((key, batch({"events": rows})))
    return out


def publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = EventProducer(bootstrap, topic)
    for key, value in messages:
        producer.send_raw(key, value)
    producer.flush()


class Crash(Exception):
    pass


def test_a_sink_dying_between_insert_and_commit_is_replayed_exactly(
    pulse_env, broker, chdb_client, database
):
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    migrate(chdb_client, database)
    messages = envelopes(3000, 50)
    publish(broker.bootstrap, pulse_env["PULSE_TOPIC_ENRICHED"], messages)
    settings = SinkSettings(database=database, batch_rows=400, batch_age_s=0.2)
    spec = table_specs(settings)["events"]

    first = TableSink(spec, settings, chdb_client)

    def die(runs):  # the rows are in ClickHouse; the process dies before committing
        first.stop()
        raise Crash

    first._flush._commit = die
    thread = threading.Thread(target=lambda: _swallow(first.run, Crash), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    written = chdb_client.command(f"SELECT count() FROM {database}.events")
    assert written > 0  # a flush landed, uncommitted

    # Nothing was committed: the second sink reads every message again.
    second = successor(TableSink(spec, settings, chdb_client), len(messages))
    assert second.stats.replays >= 1
    assert_written_once(chdb_client, database, 3000)


def successor(sink: TableSink, messages: int) -> TableSink:
    """Run ``sink`` until it has read ``messages`` and committed what it holds; stop it."""
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: sink.stats.consumed == messages, 60, "every message re-read")
        wait_for(lambda: sink.stats.batches > 0 and not sink.holding, 30, "a commit")
    finally:
        sink.stop()
        thread.join(30)
    return sink


def assert_written_once(client, database: str, n: int) -> None:
    exact = f"SELECT count(), uniqExact(event_id) FROM {database}.events"
    assert client.query(exact).result_rows == [(n, n)]
    assert_rollups_match_events(client, database, n)


def test_runs_written_past_failed_commits_are_replayed_exactly(
    pulse_env, broker, chdb_client, database
):
    # Commits fail while the group coordinator moves, and the sink goes on writing runs past
    # its committed offset; its successor (here with other batch sizes) must rebuild every one
    # of those runs, not only the first, or the rollup views count the others twice.
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    migrate(chdb_client, database)
    messages = envelopes(3000, 50)
    settings = SinkSettings(database=database, batch_rows=400, batch_age_s=0.2)
    spec = table_specs(settings)["events"]
    first = TableSink(spec, settings, chdb_client)
    commits = []

    def fail_then_die(runs):
        commits.append(runs)
        if len(commits) < 3:
            return False  # what _commit answers to "Waiting for coordinator"
        first.stop()
        raise Crash

    first._flush._commit = fail_then_die
    thread = threading.Thread(target=lambda: _swallow(first.run, Crash), daemon=True)
    thread.start()
    third = len(messages) // 3
    for wave in range(3):  # one flush, one failed commit per wave; the sink dies at the third
        publish(broker.bootstrap, pulse_env["PULSE_TOPIC_ENRICHED"],
                messages[wave * third : (wave + 1) * third if wave < 2 else None])  # fmt: skip
        wait_for(lambda w=wave: len(commits) > w, 60, f"flush {wave + 1}")
    thread.join(60)
    assert not thread.is_alive() and len(commits) == 3

    bigger = SinkSettings(database=database, batch_rows=1000, batch_age_s=0.2)
    second = successor(TableSink(table_specs(bigger)["events"], bigger, chdb_client), len(messages))
    assert second.stats.replays == sum(len(runs) for runs in commits)
    assert_written_once(chdb_client, database, 3000)


def _swallow(fn, exc_type) -> None:
    with contextlib.suppress(exc_type):
        fn()


def assert_rollups_match_events(client, database: str, n: int) -> None:
    daily = client.query(
        f"SELECT sum(events), uniqExactMerge(users), uniqExactMerge(sessions) "
        f"FROM {database}.usage_daily"
    ).result_rows
    hourly = client.query(f"SELECT sum(events) FROM {database}.usage_hourly").result_rows
    raw = client.query(
        f"SELECT count(), uniqExactIf(user_id, user_id != ''), uniqExact(session_id) "
        f"FROM {database}.events"
    ).result_rows
    assert daily == raw and raw[0][0] == n
    assert hourly == [(n,)]


def test_a_second_sink_joining_and_leaving_changes_nothing(
    pulse_env, broker, chdb_client, database
):
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    migrate(chdb_client, database)
    topic = pulse_env["PULSE_TOPIC_ENRICHED"]
    settings = SinkSettings(database=database, batch_rows=300, batch_age_s=0.2)
    spec = table_specs(settings)["events"]
    sinks = [TableSink(spec, settings, chdb_client) for _ in range(2)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in sinks]
    total = sent = 0
    count = f"SELECT count() FROM {database}.events"
    group = f"{pulse_env['PULSE_GROUP_PREFIX']}-events"
    try:
        threads[0].start()
        for round_ in range(6):
            messages = envelopes(1000, 40, start=total)
            publish(broker.bootstrap, topic, messages)
            total, sent = total + 1000, sent + len(messages)
            if round_ == 1:
                threads[1].start()  # joins mid-load: a rebalance
            if round_ == 4:
                sinks[1].stop()  # leaves mid-load: another
            wait_for(lambda t=total: chdb_client.command(count) >= t, 90, f"{total} rows")
        # Every offset committed: nothing more can be inserted, the count is final.
        wait_for(lambda: committed(broker, group, topic) == sent, 60, "all offsets committed")
    finally:
        for s in sinks:
            s.stop()
        for t in threads:
            t.join(30)
    assert sinks[1].stats.rows_written > 0  # it did take partitions
    exact = f"SELECT count(), uniqExact(event_id) FROM {database}.events"
    assert chdb_client.query(exact).result_rows == [(total, total)]


def test_sink_processes_killed_during_a_load_leave_every_event_once(processes, pulse_env, broker):
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    topic = pulse_env["PULSE_TOPIC_ENRICHED"]
    total = 12_000
    messages = envelopes(total, 25)
    done = threading.Event()

    def load() -> None:  # published while the sinks die: paced, ~1,200 messages/s
        for i in range(0, len(messages), 60):
            publish(broker.bootstrap, topic, messages[i : i + 60])
            time.sleep(0.05)  # pacing, not waiting for anything
        done.set()

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    rnd = random.Random(int(os.environ.get("PULSE_TEST_SEED", "11")))
    env = {"PULSE_BATCH_ROWS": "500", "PULSE_METRICS_PORT": "0"}
    count = "SELECT count() FROM pulse.events"
    kills = 0
    for attempt in range(4):
        name = f"sink-{attempt}"
        proc = processes.start(name, "sinks", "run", "--table", "events", **env)
        before = scalar(count)
        wait_for(lambda b=before: scalar(count, b) > b, 60, f"{name} to insert rows")
        time.sleep(rnd.uniform(0.2, 1.5))  # the fault's moment: random, seeded
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 1
    loader.join(120)
    assert done.is_set()
    processes.start("sink-last", "sinks", "run", "--table", "events", **env)
    wait_for(lambda: scalar(count) >= total, 120, f"{total} rows")
    group = f"{pulse_env['PULSE_GROUP_PREFIX']}-events"
    wait_for(lambda: committed(broker, group, topic) == len(messages), 60, "all offsets committed")
    assert scalar(count) == total
    assert scalar("SELECT uniqExact(event_id) FROM pulse.events") == total
    # exactly the produced events: event i has source_offset i
    assert scalar("SELECT uniqExact(source_offset) FROM pulse.events") == total
    assert scalar("SELECT max(source_offset) - min(source_offset) + 1 FROM pulse.events") == total
    assert scalar("SELECT sum(events) FROM pulse.usage_daily") == total
    assert kills == 4
    assert processes.stop("sink-last") == 0  # SIGTERM: flush, commit, leave


def test_dead_letters_land_in_their_table(pulse_env, broker, chdb_client, database):
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    migrate(chdb_client, database)
    producer = EventProducer(broker.bootstrap, pulse_env["PULSE_TOPIC_DLQ"])
    for i in range(30):
        headers = dead_letter_headers(
            None,
            stage="validate",
            reason=["bad_timestamp_past", "undecodable"][i % 2],
            detail=f"case {i}",
            topic="pulse.events.raw",
            partition=i % 4,
            offset=100 + i,
        )
        producer.send_raw(f"k{i}".encode(), bytes([i]) * 3, headers=headers)
    producer.flush()
    settings = SinkSettings(database=database, batch_rows=10)
    sink = TableSink(table_specs(settings)["dead_letters"], settings, chdb_client)
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    try:
        count = f"SELECT count() FROM {database}.dead_letters"
        wait_for(lambda: chdb_client.command(count) == 30, 60, "30 dead letters")
    finally:
        sink.stop()
        thread.join(30)
    by_reason = chdb_client.query(
        f"SELECT reason, count(), min(source_offset), max(payload_bytes) "
        f"FROM {database}.dead_letters GROUP BY reason ORDER BY reason"
    ).result_rows
    assert by_reason == [("bad_timestamp_past", 15, 100, 3), ("undecodable", 15, 101, 3)]
    row = chdb_client.query(
        f"SELECT detail, base64Decode(payload_base64), message_key "
        f"FROM {database}.dead_letters WHERE source_offset = 107"
    ).result_rows
    assert row == [("case 7", "\x07\x07\x07", "k7")]


def with_source(messages: list[tuple[bytes, bytes]], first_offset: int = 0) -> list[tuple]:
    """(key, value, headers): each message as a streams worker forwards raw message N."""
    return [
        (key, value, source_headers("pulse.events.raw", 0, first_offset + n))
        for n, (key, value) in enumerate(messages)
    ]


def publish_with_headers(bootstrap: str, topic: str, messages: list[tuple]) -> None:
    producer = EventProducer(bootstrap, topic)
    for key, value, headers in messages:
        producer.send_raw(key, value, headers=headers)
    producer.flush()


def run_until_committed(sink: TableSink, broker, group: str, topic: str, n: int) -> None:
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: committed(broker, group, topic) == n, 60, f"{n} offsets committed")
    finally:
        sink.stop()
        thread.join(30)


def test_messages_a_streams_worker_forwarded_twice_are_written_once(
    pulse_env, broker, chdb_client, database
):
    """A worker killed before its flush leaves messages its successor forwards again, with the
    same source headers; some arrive after the sink committed the first copy and restarted,
    some in the same batch. Rows (before any merge), rollups and dead letters count each once."""
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    migrate(chdb_client, database)
    topic, dlq = pulse_env["PULSE_TOPIC_ENRICHED"], pulse_env["PULSE_TOPIC_DLQ"]
    settings = SinkSettings(database=database, batch_rows=400, batch_age_s=0.2)
    specs = table_specs(settings)
    group = f"{pulse_env['PULSE_GROUP_PREFIX']}-events"
    first, second = with_source(envelopes(2000, 40)), with_source(envelopes(2000, 40, 2000), 10**4)
    publish_with_headers(broker.bootstrap, topic, first)
    sink = TableSink(specs["events"], settings, chdb_client)
    run_until_committed(sink, broker, group, topic, len(first))

    # The successor's copies: the tail of the committed messages, then new messages mixed with
    # copies of themselves (one batch holds both).
    rnd = random.Random(5)
    again = first[-12:] + [m for m in second for m in ([m, m] if rnd.random() < 0.2 else [m])]
    publish_with_headers(broker.bootstrap, topic, again)
    sink = TableSink(specs["events"], settings, chdb_client)
    total = len(first) + len(again)
    run_until_committed(sink, broker, group, topic, total)
    assert sink.stats.repeats == len(again) - len(second)
    exact = f"SELECT count(), uniqExact(event_id) FROM {database}.events"  # no FINAL, no merge
    assert chdb_client.query(exact).result_rows == [(4000, 4000)]
    assert_rollups_match_events(chdb_client, database, 4000)

    letters = []
    for i in range(20):
        headers = dead_letter_headers(
            None, stage="validate", reason="undecodable", detail=f"case {i}",
            topic="pulse.events.raw", partition=1, offset=500 + i // 2, batch_index=i % 2,
        )  # fmt: skip
        letters.append((b"k", bytes([i]), headers))
    publish_with_headers(broker.bootstrap, dlq, letters + letters[:7])  # 7 sent twice
    sink = TableSink(specs["dead_letters"], settings, chdb_client)
    dlq_group = f"{pulse_env['PULSE_GROUP_PREFIX']}-dead_letters"
    run_until_committed(sink, broker, dlq_group, dlq, 27)
    assert sink.stats.repeats == 7
    assert chdb_client.command(f"SELECT count() FROM {database}.dead_letters") == 20
