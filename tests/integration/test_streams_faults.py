"""Streams under batches, duplicates, hostile messages, a worker joining mid-stream and then
(second variant) a worker killed with SIGKILL: events, window counts and dead letters still
equal what was produced, computed independently."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from streams.kafka.broker import free_port
from streams.kafka.producer import EventProducer, SessionBatcher
from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings
from streams.tools.traffic import Traffic, TrafficConfig

from .conftest import REPO, wait_for
from .kafka_helpers import control_offsets
from .test_pipeline import expected_counts, query, scalar, wait_count


def produce(producer: EventProducer, events: list[dict], duplicates: list[dict]) -> None:
    batcher = SessionBatcher(producer, 20)
    for event in events:
        batcher.add(event)
    batcher.flush()
    for event in duplicates:  # client retries: the same events again, as single messages
        producer.send(event)
    producer.flush()


@pytest.mark.parametrize(
    ("kill", "guarantee"),
    [(False, "at_least_once"), (True, "at_least_once"), (True, "exactly_once")],
    ids=["join", "join-then-sigkill", "join-then-sigkill-exactly-once"],
)
def test_rebalance_crash_duplicates_and_catalog(
    pulse_env, processes, broker, tmp_path, kill, guarantee
):
    pulse_env.values["PULSE_PROCESSING_GUARANTEE"] = guarantee
    pulse_env.values["PULSE_TOPIC_CATALOG"] = f"catalog-{pulse_env['PULSE_TOPIC_RAW']}"
    os.environ["PULSE_TOPIC_CATALOG"] = pulse_env["PULSE_TOPIC_CATALOG"]
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    subprocess.run(
        [sys.executable, "-m", "streams", "catalog", "sync", "deploy/catalog/plugins.yaml"],
        cwd=REPO, env=pulse_env.child(), check=True, capture_output=True, timeout=60,
    )  # fmt: skip

    now_ms = int(time.time() * 1000)
    config = TrafficConfig(seed=21, start_ms=now_ms - 50 * 60_000, mean_gap_ms=300.0, users=80,
                           late_fraction=0.05, duplicate_fraction=0.0)  # fmt: skip
    events = Traffic(config).take(9000)
    phases = [events[:3000], events[3000:6000], events[6000:]]
    # Client retries resend recent events (within the de-duplication horizon; older repeats
    # are caught by the raw table's ReplacingMergeTree, not by the counts).
    dups = [e for phase in phases for e in phase[-400::25]]
    producer = EventProducer(broker.bootstrap, pulse_env["PULSE_TOPIC_RAW"])
    hostile = [(b"h%d" % i, b"\x00not avro %d" % i) for i in range(6)]

    web_a, web_b = free_port(), free_port()
    worker_a = processes.start("streams-a", "streams", "worker", PULSE_WEB_PORT=str(web_a),
                               PULSE_DATA_DIR=str(tmp_path / "a"),
                               PULSE_TRACE_FLUSHES="true")  # fmt: skip
    processes.start("sink", "sinks", "run")
    produce(producer, phases[0], dups[:16])
    for key, value in hostile[:3]:
        producer.send_raw(key, value)
    wait_for(lambda: scalar("SELECT count() FROM pulse.events") > 500, 120, "worker A running")

    processes.start("streams-b", "streams", "worker", PULSE_WEB_PORT=str(web_b),
                    PULSE_DATA_DIR=str(tmp_path / "b"), PULSE_TRACE_FLUSHES="true")  # fmt: skip
    produce(producer, phases[1], dups[16:32])  # while the group rebalances
    wait_for(lambda: "Executing _on_partitions_assigned" in processes.log("streams-b"), 60,
             "worker B to join the group")  # fmt: skip
    wait_count("SELECT count() FROM pulse.events FINAL", 6000, 120, "phases 1 and 2")

    if kill:
        worker_a.send_signal(signal.SIGKILL)  # no flush, no commit, no goodbye
        worker_a.wait()
    produce(producer, phases[2], dups[32:])
    for key, value in hostile[3:]:
        producer.send_raw(key, value)
    producer.flush()
    n = len(events)
    try:
        wait_count("SELECT count() FROM pulse.events FINAL", n, 120, "all events after the crash")
    except AssertionError:
        by_partition = query("SELECT source_partition AS p, count() AS n, max(source_offset) AS o "
                             "FROM pulse.events FINAL GROUP BY p ORDER BY p")  # fmt: skip
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{web_b}/metrics", timeout=10).read()
        print("per partition:", by_partition)
        from schemas import ENRICHED_EVENT, ENRICHED_EVENT_BATCH, Decoder, default_catalog

        from .kafka_helpers import read_topic

        decode = Decoder(default_catalog(), [ENRICHED_EVENT, ENRICHED_EVENT_BATCH])
        in_topic = {}
        for m in read_topic(broker.bootstrap, pulse_env["PULSE_TOPIC_ENRICHED"], 10**9, 15):
            for e in decode(m.value())["events"]:
                in_topic[e["event_id"]] = (e["source_partition"], e["source_offset"])
        in_table = {r["id"] for r in query("SELECT toString(event_id) AS id FROM pulse.events")}
        produced = {e["event_id"] for e in events}
        print("missing from enriched topic:", len(produced - set(in_topic)),
              "in topic but not in table:", len(set(in_topic) - in_table))  # fmt: skip
        from schemas import ANALYTICS_EVENT, ANALYTICS_EVENT_BATCH
        from schemas.errors import SchemaError

        decode_raw = Decoder(default_catalog(), [ANALYTICS_EVENT, ANALYTICS_EVENT_BATCH])
        raw_at = {}
        for m in read_topic(broker.bootstrap, pulse_env["PULSE_TOPIC_RAW"], 10**9, 15):
            try:
                record = decode_raw(m.value())
            except SchemaError:
                continue  # one of the hostile messages
            for e in record.get("events", [record]):
                raw_at.setdefault(e["event_id"], (m.partition(), m.offset()))
        lost = sorted(raw_at[i] for i in produced - set(in_topic))
        by_p = {}
        for p, o in lost:
            by_p.setdefault(p, set()).add(o)
        print("lost raw offsets:", {p: (min(o), max(o), len(o)) for p, o in by_p.items()})
        print("\n".join(line for line in metrics.decode().splitlines()
                        if line.startswith("pulse_streams") and "bucket" not in line))  # fmt: skip
        raise
    try:
        wait_count("SELECT sum(event_count) FROM pulse.counts_1m FINAL", n, 60, "window counts")
    except AssertionError:
        print(
            "counts by partition:",
            query(
                "SELECT source_partition AS p, sum(event_count) AS n, max(version) AS v "
                "FROM pulse.counts_1m FINAL GROUP BY p ORDER BY p"
            ),
        )
        print(
            "events by partition:",
            query(
                "SELECT source_partition AS p, count() AS n, max(source_offset) AS o "
                "FROM pulse.events FINAL GROUP BY p ORDER BY p"
            ),
        )
        raise

    assert scalar("SELECT count() FROM pulse.events FINAL") == n
    assert scalar("SELECT uniqExact(event_id) FROM pulse.events") == n
    wait_count("SELECT count() FROM pulse.dead_letters", len(hostile), 60, "the dead letters")
    for topic in ("PULSE_TOPIC_ENRICHED", "PULSE_TOPIC_COUNTS", "PULSE_TOPIC_DLQ"):
        # Under exactly-once every output is written in a transaction (markers take offsets);
        # under at-least-once none is.
        markers = control_offsets(broker.bootstrap, pulse_env[topic])
        assert (markers > 0) == (guarantee == "exactly_once"), (topic, markers)
    dead = query("SELECT reason, count() AS n FROM pulse.dead_letters GROUP BY reason")
    assert [(r["reason"], int(r["n"])) for r in dead] == [("unknown_schema", len(hostile))]
    got = {
        (int(r["w"]), r["instance_id"], r["plugin_id"], r["extension"], r["action"]):
            (int(r["n"]), round(float(r["s"]), 6))
        for r in query(
            "SELECT toUnixTimestamp64Milli(window_start) AS w, instance_id, plugin_id, extension, "
            "action, sum(event_count) AS n, sum(value_sum) AS s FROM pulse.counts_1m FINAL "
            "GROUP BY w, instance_id, plugin_id, extension, action"
        )
    }  # fmt: skip
    expected = expected_counts(events)
    for key in sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))[:3]:
        w, _instance, plugin, extension, action = key
        where = (f"toUnixTimestamp64Milli(window_start) = {w} AND plugin_id = '{plugin}' "
                 f"AND extension = '{extension}' AND action = '{action}'")  # fmt: skip
        print("MISMATCH", key, "got", got.get(key), "expected", expected.get(key))
        print(" versions:", query(f"SELECT source_partition, event_count, version, emitted_at "
                                  f"FROM pulse.counts_1m WHERE {where} ORDER BY source_partition, "
                                  f"version"))  # fmt: skip
        ev_where = where.replace(
            "toUnixTimestamp64Milli(window_start)",
            "intDiv(toUnixTimestamp64Milli(event_time), 60000) * 60000",
        )
        print(" events:", query(f"SELECT toString(event_id) AS id, source_partition, "
                                f"source_offset FROM pulse.events WHERE {ev_where} "
                                f"ORDER BY source_partition, source_offset"))  # fmt: skip
    assert got == expected

    known = {r["plugin_id"]: r for r in query(
        "SELECT plugin_id, any(plugin_known) AS known, any(plugin_title) AS title, "
        "any(plugin_owner) AS owner FROM pulse.events FINAL GROUP BY plugin_id")}  # fmt: skip
    assert known["catalog"]["known"] is True and known["catalog"]["title"] == "Software Catalog"
    assert known["sonarqube"]["known"] is False  # not in deploy/catalog/plugins.yaml
    entity_rows = query("SELECT count() AS n FROM pulse.events FINAL "
                        "WHERE action = 'navigate' AND entity_kind != ''")  # fmt: skip
    assert int(entity_rows[0]["n"]) > 0

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{web_b}/metrics", timeout=10).read()
    text = metrics.decode()
    for series in (
        "pulse_streams_events_in_total",
        "pulse_streams_duplicate_events_total",
        "pulse_streams_dead_letters_total",
        "pulse_streams_late_events_total",
        "pulse_streams_catalog_entries",
        "pulse_streams_message_processing_seconds",
    ):
        assert series in text, series  # fmt: skip
    assert 'pulse_streams_catalog_entries{table="plugins"} 10.0' in text
