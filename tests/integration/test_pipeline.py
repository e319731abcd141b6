"""End to end: producer -> Kafka -> faust worker -> sink -> chDB, checked against answers
computed independently from what was produced."""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections import Counter, defaultdict

from schemas import ANALYTICS_EVENT, Encoder, default_catalog
from sinks.errors import SinkError
from sinks.query.sql import query_via_server
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings
from streams.tools.traffic import Traffic, TrafficConfig

from .conftest import PATIENCE, SECRET, wait_for
from .kafka_helpers import read_topic

WINDOW_MS = 60_000


def query(sql: str) -> list[dict]:
    # Only through the sink's query server: opening its chDB path here would take its lock.
    url, token = os.environ["PULSE_QUERY_URL"], os.environ["PULSE_QUERY_TOKEN"]
    text = query_via_server(url, sql, "JSONEachRow", token=token)
    return [json.loads(line) for line in text.splitlines() if line]


def scalar(sql: str, default: int = 0) -> int:
    try:
        rows = query(sql)
    except SinkError:  # the sink may not serve queries yet
        return default
    return int(next(iter(rows[0].values()))) if rows else default


def wait_count(sql: str, n: int, timeout_s: float, what: str) -> None:
    """Poll ``sql`` (one number) until it reaches ``n``; fail showing the last value."""
    seen = []

    def reached() -> bool:
        seen.append(scalar(sql))
        return seen[-1] >= n

    timeout_s *= PATIENCE  # a hang guard, not a speed assertion
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if reached():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}: {seen[-1]} of {n}")


def expected_counts(events: list[dict]) -> dict[tuple, tuple[int, float]]:
    """Window counts computed straight from the produced events (not by Pulse's code)."""
    counts: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    for e in events:
        c = e["context"]
        plugin = c["plugin_id"] if c["plugin_id"] not in (None, "", "root", "app") else "unknown"
        key = (
            e["event_time"] // WINDOW_MS * WINDOW_MS,
            e["source"]["instance_id"],
            plugin,
            c["extension_id"] or c["extension"] or "",
            e["action"],
        )
        counts[key][0] += 1
        counts[key][1] += e["value"] or 0.0
    return {k: (n, round(s, 6)) for k, (n, s) in counts.items()}


def hostile_messages(valid: bytes) -> list[tuple[bytes | None, bytes, str]]:
    """(key, value, expected dead-letter reason)."""
    rng = random.Random(5)
    return [
        (b"k1", bytes(rng.getrandbits(8) for _ in range(64)), "unknown_schema"),
        (None, b"", "unknown_schema"),
        (b"k3", b"\xc3\x01" + b"\xee" * 8 + b"body", "unknown_schema"),
        (b"\xff\xfe", valid[:-7], "undecodable"),
    ]


def test_events_and_counts_match_what_was_produced(pulse_env, processes, broker):
    now_ms = int(time.time() * 1000)
    config = TrafficConfig(
        seed=11,
        start_ms=now_ms - 45 * 60_000,
        mean_gap_ms=900.0,
        users=60,
        late_fraction=0.05,
        duplicate_fraction=0.0,
        instances=("backstage.acme.internal", "portal.example.org"),
    )
    events = Traffic(config).take(2500)
    late = sum(1 for a, b in itertools.pairwise(events) if b["event_time"] < a["event_time"])
    assert late > 50  # the input really is out of order

    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    producer = EventProducer(broker.bootstrap, pulse_env["PULSE_TOPIC_RAW"])
    bad = hostile_messages(Encoder(default_catalog().latest(ANALYTICS_EVENT))(events[0]))
    for i, event in enumerate(events):
        producer.send(event)
        if i % 600 == 100:  # hostile messages mixed into the stream
            key, value, _ = bad[i // 600]
            producer.send_raw(key, value)
    producer.flush()

    started = time.monotonic()
    processes.start("streams", "streams", "worker")
    processes.start("sink", "sinks", "run")
    n = len(events)

    first_row = wait_for(
        lambda: scalar("SELECT count() FROM pulse.events") > 0 and time.monotonic(),
        120,
        "the first event in ClickHouse",
    )
    wait_for(
        lambda: scalar("SELECT count() FROM pulse.events FINAL") >= n,
        180,
        f"{n} events in ClickHouse",
    )
    done = time.monotonic()
    wait_for(
        lambda: scalar("SELECT sum(event_count) FROM pulse.counts_1m FINAL") >= n,
        60,
        "window counts to cover every event",
    )

    # events: exactly the produced events, once each, with their fields.
    assert scalar("SELECT count() FROM pulse.events FINAL") == n
    rows = query(
        "SELECT toString(event_id) AS id, plugin_id, action, subject, value, user_id, "
        "toUnixTimestamp64Milli(event_time) AS t FROM pulse.events FINAL"
    )
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {e["event_id"] for e in events}
    for e in events[:300]:
        row = by_id[e["event_id"]]
        assert (row["plugin_id"], row["action"], row["subject"]) == (
            e["context"]["plugin_id"], e["action"], e["subject"])  # fmt: skip
        assert row["value"] == e["value"]
        assert int(row["t"]) == e["event_time"]
        assert (row["user_id"] == "") == (e["user_id"] is None)
        assert e["user_id"] is None or e["user_id"] not in row["user_id"]

    # counts_1m: window key by window key, partitions summed, equal to the independent answer.
    got = {
        (int(r["w"]), r["instance_id"], r["plugin_id"], r["extension"], r["action"]): (
            int(r["n"]), round(float(r["s"]), 6))
        for r in query(
            "SELECT toUnixTimestamp64Milli(window_start) AS w, instance_id, plugin_id, extension, "
            "action, sum(event_count) AS n, sum(value_sum) AS s FROM pulse.counts_1m FINAL "
            "GROUP BY w, instance_id, plugin_id, extension, action"
        )
    }  # fmt: skip
    assert got == expected_counts(events)

    # Nothing lost: every raw message is an enriched event or a dead letter, never both.
    dlq = read_topic(broker.bootstrap, pulse_env["PULSE_TOPIC_DLQ"], len(bad))
    enriched = read_topic(broker.bootstrap, pulse_env["PULSE_TOPIC_ENRICHED"], n)
    assert len(enriched) == n
    assert len(dlq) == len(bad)
    reasons = Counter(dict(m.headers())["pulse.error.reason"].decode() for m in dlq)
    assert reasons == Counter(reason for _, _, reason in bad)
    assert {(m.key(), m.value() or b"") for m in dlq} == {(k, v) for k, v, _ in bad}

    # Both workers stop cleanly on SIGTERM.
    assert processes.stop("sink") == 0
    assert processes.stop("streams") == 0
    assert SECRET not in processes.log("streams") + processes.log("sink")

    rate = n / (done - first_row)
    print(
        f"\nE2E: {n} events (+{len(bad)} bad) through streams and sink; first row after "
        f"{first_row - started:.1f}s, then {rate:.0f} events/s; total {done - started:.1f}s "
        f"on {os.cpu_count()} cores"
    )


def _late_events(port: str) -> int:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("pulse_streams_late_events_total "))  # fmt: skip


def test_two_hours_of_disorder_every_event_is_windowed_or_reported_late(
    pulse_env, processes, broker
):
    """Event times spread over two hours (3% two days old), sent in random order, 5% twice:
    every event is in exactly one emitted window count or in the late counter, and the
    unwindowed_events question shows the late ones."""
    now_ms = int(time.time() * 1000)
    rnd = random.Random(18)
    config = TrafficConfig(seed=18, start_ms=now_ms - 7_200_000, mean_gap_ms=1200.0,
                           duplicate_fraction=0.0, late_fraction=0.0)  # fmt: skip
    events = Traffic(config).take(6000)
    for e in events:
        back = 2 * 86_400_000 if rnd.random() < 0.03 else rnd.randrange(7_200_000)
        e["event_time"] = now_ms - back
    rnd.shuffle(events)
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    producer = EventProducer(broker.bootstrap, pulse_env["PULSE_TOPIC_RAW"])
    for e in events:
        producer.send(e)
        if rnd.random() < 0.05:
            producer.send(e)  # a producer's retry: dropped as a duplicate
    producer.flush()
    processes.start("streams", "streams", "worker")
    processes.start("sink", "sinks", "run")
    n = len(events)
    wait_count("SELECT count() FROM pulse.events FINAL", n, 300, f"{n} events")

    def ledger() -> tuple[int, int]:
        windowed = scalar("SELECT sum(events) FROM pulse.usage_1m")
        return windowed, _late_events(pulse_env["PULSE_WEB_PORT"])

    def balanced() -> int:
        windowed, late = ledger()
        return windowed + late == n and late

    late = wait_for(balanced, 120, "every event windowed or counted late")
    assert late > 0.03 * n  # the two-day-old ones at least
    assert scalar("SELECT count() FROM pulse.events") == n  # the sink wrote each once
    rows = query("SELECT sum(unwindowed) AS u, sum(events) AS e FROM pulse.unwindowed_daily")
    assert (int(rows[0]["u"]), int(rows[0]["e"])) == (late, n)
