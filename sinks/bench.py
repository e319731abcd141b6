"""``python -m sinks bench``: Kafka -> ClickHouse throughput, committed, next to a baseline.

One embedded broker (``python -m streams broker``, a separate process) holds enriched events in
envelopes; one chDB engine in this process. The sink (Avro handed to ClickHouse as object
containers) and the baseline (the same worker decoding Avro in Python and inserting columns,
``PULSE_AVRO_PASSTHROUGH=false``) each consume the topic with their own group into a database
of their own, alternating for ``--rounds`` rounds with the engine alone (the same envelopes'
blocks in object containers, inserted straight into the same tables and views); the RESULT
line has the medians, so a slow phase of this shared machine weighs on all three.

A rate runs from the first message consumed to the last offset committed. "Per core" divides
events by the CPU seconds this process used meanwhile (chDB's threads included; the broker's
excluded), since both cores of the machine are in play, plus the background merges the run
left behind: the CPU until ClickHouse has run no merge for a few seconds. Without that tail a
run that ends before ClickHouse merges its parts would look cheaper than it is, and the merges
would be billed to the next run.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import ENRICHED_EVENT_BATCH, Encoder, default_catalog
from schemas.container import ContainerWriter, ItemSchemas, block_of
from schemas.dead_letters import source_headers
from sinks.clickhouse import connect
from sinks.schema.migrate import migrate
from sinks.settings import SinkSettings
from sinks.tables import table_specs
from sinks.worker import INSERT_SETTINGS, TableSink

REPO = Path(__file__).resolve().parents[1]
PLUGINS = [
    "catalog",
    "techdocs",
    "scaffolder",
    "search",
    "kubernetes",
    "api-docs",
    "github-actions",
]
ACTIONS = ["navigate", "click", "search", "create", "discover", "copy"]


MERGES_QUIET_S = 3.0  # no merge running this long: ClickHouse has settled


@dataclass
class Figures:
    events: int
    seconds: float
    cpu_seconds: float  # to the last commit, and the merges after it
    merge_tail_cpu_seconds: float = 0.0  # of which after the last commit
    system_cpu_seconds: float = 0.0  # of which in the kernel (mostly writing parts)
    threads: Counter[str] = field(default_factory=Counter)  # CPU seconds by thread name

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def per_core(self) -> float:
        return self.events / self.cpu_seconds


def enriched_events(n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        plugin = rnd.choice(PLUGINS)
        t = now - rnd.randrange(3_600_000)
        out.append(
            {
                "event_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                "event_time": t, "received_at": t + 40, "lateness_ms": 40,
                "instance_id": "backstage.acme.internal", "frontend_system": "NEW",
                "session_id": f"session-{i // 50}", "user_id": f"{rnd.getrandbits(256):064x}",
                "plugin_id": plugin, "plugin_known": True, "plugin_title": plugin.title(),
                "plugin_owner": "group:default/platform", "plugin_lifecycle": "production",
                "plugin_package": f"@backstage/plugin-{plugin}", "plugin_category": "core",
                "extension": f"page:{plugin}", "extension_kind": "page", "route_ref": "",
                "action": rnd.choice(ACTIONS), "subject": f"/{plugin}/{rnd.randrange(500)}",
                "value": rnd.random() * 100 if rnd.random() < 0.3 else None,
                "attributes": {"to": f"/{plugin}"}, "entity_ref": "component:default/svc",
                "entity_kind": "component", "entity_namespace": "default", "entity_name": "svc",
                "search_types": "", "is_page_view": rnd.random() < 0.4,
                "source_partition": i % 4, "source_offset": i,
            }
        )  # fmt: skip
    return out


def envelopes(events: int, batch: int, seed: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of each enriched envelope, as a streams worker sends them."""
    encode = Encoder(default_catalog().latest(ENRICHED_EVENT_BATCH))
    records = enriched_events(events, seed)
    chunks = [records[i : i + batch] for i in range(0, events, batch)]
    return [(chunk[0]["session_id"].encode(), encode({"events": chunk})) for chunk in chunks]


def _publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "log_level": 3})
    for offset, (key, value) in enumerate(messages):
        while True:
            try:
                producer.produce(topic, value, key, headers=source_headers("raw", 0, offset))
                break  # the sink reads the headers (repeats)
            except BufferError:
                producer.poll(0.1)
    if producer.flush(60):
        raise RuntimeError("the broker did not take every message")


def _cpu_by_thread() -> Counter[str]:
    """CPU seconds each thread name of this process used so far (Linux ``/proc``; chDB names
    its threads, e.g. ``MergeMutate`` for background merges). Threads that ended are gone."""
    out: Counter[str] = Counter()
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[name] += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def _settle(client: Client, database: str, timeout_s: float = 300) -> None:
    """Wait until no merge of ``database`` has run for ``MERGES_QUIET_S``."""
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    query = "SELECT count() FROM system.merges WHERE database = {db:String}"
    while time.monotonic() - quiet_since < MERGES_QUIET_S:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{database}: merges still running after {timeout_s:.0f} s")
        if client.command(query, parameters={"db": database}):
            quiet_since = time.monotonic()
        time.sleep(0.05)


def _measure(sink: TableSink, events: int, timeout_s: float = 600) -> Figures:
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while sink.stats.consumed == 0:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"sink {sink.spec.table} consumed nothing")
        time.sleep(0.005)
    t0, c0, threads0, s0 = (
        time.perf_counter(),
        time.process_time(),
        _cpu_by_thread(),
        os.times().system,
    )
    while sink.stats.rows_written < events or sink.holding:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"sink stalled at {sink.stats.rows_written} of {events} rows")
        time.sleep(0.005)
    t1, c1, threads1 = time.perf_counter(), time.process_time(), _cpu_by_thread()
    sink.stop()
    thread.join(60)
    _settle(sink.client, sink.settings.database)
    c2, threads2, s2 = time.process_time(), _cpu_by_thread(), os.times().system
    # The sink's threads have ended by now; ClickHouse's merge threads live on.
    tail = Counter({name: threads2[name] - threads1[name] for name in threads2})
    threads1.subtract(threads0)
    return Figures(events, t1 - t0, c2 - c0, c2 - c1, s2 - s0, +threads1 + +tail)


def run(
    events: int,
    batch: int,
    partitions: int,
    batch_rows: int,
    seed: int,
    data_dir: Path | None = None,
    rounds: int = 1,
) -> dict[str, list[Figures]]:
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pulse-sink-bench-", dir=data_dir))
    port = _free_port()
    broker = subprocess.Popen(
        [sys.executable, "-m", "streams", "broker", "--port", str(port), "--no-topics"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        bootstrap = f"127.0.0.1:{port}"
        # Polled until the broker listens: its refused connects are expected, not logged.
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        topic = f"bench-enriched-{int(time.time())}"
        _wait_for(admin)
        admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
        del admin  # Kafka clients must not outlive the broker: they log failed reconnects
        messages = envelopes(events, batch, seed)
        _publish(bootstrap, topic, messages)
        print(f"input: {events} enriched events in {len(messages)} messages ({batch} per envelope)")
        url = f"chdb://{workdir / 'clickhouse'}"
        client = connect(url)
        # One chDB connection runs one statement at a time: the sink inserts partition runs
        # side by side through these, opened once for every round.
        parallelism = SinkSettings(kafka_bootstrap=bootstrap).insert_parallelism
        extra = [connect(url) for _ in range(parallelism - 1)]
        results: dict[str, list[Figures]] = {"sink": [], "baseline": [], "engine": []}
        for round_ in range(1, rounds + 1):
            for name, passthrough in (("sink", True), ("baseline", False), ("engine", True)):
                label = f"{name} (round {round_}/{rounds})" if rounds > 1 else name
                if name == "engine":
                    figures = _engine_round(client, messages, batch_rows // partitions, round_)
                else:
                    figures = _round(client, extra, bootstrap, topic, events, batch_rows, name,
                                     passthrough, round_)  # fmt: skip
                print(
                    f"{label}: {figures.rate:,.0f} events/s, "
                    f"{figures.per_core:,.0f} events/s per core ({figures.seconds:.2f} s; "
                    f"{figures.cpu_seconds:.2f} CPU s, of which "
                    f"{figures.system_cpu_seconds:.2f} s in the kernel and "
                    f"{figures.merge_tail_cpu_seconds:.2f} s merging after the last commit)",
                    flush=True,
                )
                busiest = figures.threads.most_common(4)
                print("  CPU by thread: " + ", ".join(f"{n} {t:.2f} s" for n, t in busiest))
                results[name].append(figures)
        return results
    finally:
        broker.terminate()
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def _round(
    client: Client,
    extra: list[Client],
    bootstrap: str,
    topic: str,
    events: int,
    batch_rows: int,
    name: str,
    passthrough: bool,
    round_: int,
) -> Figures:
    """One sink consuming the whole topic into a database of its own, then dropped."""
    settings = SinkSettings(
        kafka_bootstrap=bootstrap,
        topic_enriched=topic,
        database=f"bench_{name}_{round_}",
        group_prefix=f"bench-{name}-{round_}-{topic}",
        batch_rows=batch_rows,
        avro_passthrough=passthrough,
        metrics_port=0,
    )
    migrate(client, settings.database)
    sink = TableSink(table_specs(settings)["events"], settings, client, None, extra)
    figures = _measure(sink, events)
    del sink  # and its dead-letter producer
    stored = client.command(f"SELECT count() FROM {settings.database}.events")
    if stored != events:
        raise RuntimeError(f"{name}: {stored} rows stored, {events} expected")
    client.command(f"DROP DATABASE {settings.database} SYNC")
    return figures


def _engine_round(
    client: Client, messages: list[tuple[bytes, bytes]], rows_per_insert: int, round_: int
) -> Figures:
    """ClickHouse's own cost for the same rows: the envelopes' blocks in object containers of
    about one sink run each, built before the clock starts, inserted into the same tables and
    views with the sink's settings, merges billed; no Kafka, no Python per row."""
    database = f"bench_engine_{round_}"
    migrate(client, database)
    spec = table_specs(SinkSettings(database=database))["events"]
    items = ItemSchemas(default_catalog(), spec.record, spec.batch)
    bodies, writer, events = [], None, 0
    for _, value in messages:
        item, count, payload = block_of(value, items)
        if writer is None or writer.records >= rows_per_insert:
            if writer is not None:
                bodies.append(writer.getvalue())
            writer = ContainerWriter(item)
        writer.add_block(count, payload)
        events += count
    if writer is not None:
        bodies.append(writer.getvalue())
    t0, c0, threads0, s0 = (
        time.perf_counter(),
        time.process_time(),
        _cpu_by_thread(),
        os.times().system,
    )
    for i, body in enumerate(bodies):
        client.raw_insert(
            f"{database}.events",
            list(spec.columns),
            body,
            fmt="Avro",
            settings={**INSERT_SETTINGS, "insert_deduplication_token": f"e{i}"},
        )
    t1, c1 = time.perf_counter(), time.process_time()
    _settle(client, database)
    c2, threads2, s2 = time.process_time(), _cpu_by_thread(), os.times().system
    threads2.subtract(threads0)
    stored = client.command(f"SELECT count() FROM {database}.events")
    if stored != events:
        raise RuntimeError(f"engine: {stored} rows stored, {events} expected")
    client.command(f"DROP DATABASE {database} SYNC")
    return Figures(events, t1 - t0, c2 - c0, c2 - c1, s2 - s0, +threads2)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(admin: AdminClient, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.list_topics(timeout=1)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def result_line(results: dict[str, list[Figures]]) -> str:
    """Medians over the rounds (one round: its figures)."""
    sink = statistics.median(f.per_core for f in results["sink"])
    baseline = statistics.median(f.per_core for f in results["baseline"])
    engine = statistics.median(f.per_core for f in results["engine"])
    return (
        f"RESULT sink={sink:.0f} baseline={baseline:.0f} ratio={sink / baseline:.2f} "
        f"engine={engine:.0f} share={sink / engine:.2f}"
    )
