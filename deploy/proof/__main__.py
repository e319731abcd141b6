"""``python -m deploy.proof``: the whole pipeline under load, faults and hostile input, then a
ledger that must add up.

Starts the embedded stack with two streams workers and two sink consumers per table, produces a
seeded stream (fault-free phases at each ``--rates``, then a phase at ``--fault-rate`` with
faults) with the hostile corpus spread through it, and meanwhile: SIGKILLs the sink three
times, SIGKILLs a worker, restarts the other (a rebalance), renames the events table away and
back (an outage), and replays a slice of the raw topic. Then it prints one ``LEDGER`` line per
check, latency percentiles per phase and the recovery after each fault, and exits 1 if any
ledger line is wrong.
"""

from __future__ import annotations

import argparse
import math
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from deploy.proof import ledger
from deploy.proof.corpus import Corpus
from deploy.proof.latency import longest_silence_s, normal_threshold_ms, recovery_s
from deploy.proof.load import Load, Phase
from deploy.proof.stack import Stack

RAW_TOPIC = "pulse.events.raw"


@dataclass
class Fault:
    name: str
    action: Callable[[], None]
    started: float = 0.0
    ended: float = 0.0
    error: str = ""


def faults(stack: Stack, load: Load, outage_s: float) -> list[Fault]:
    def kill_sink() -> None:
        stack.kill("sink")
        stack.start("sink")

    def kill_worker() -> None:
        stack.kill("worker-a")
        time.sleep(1)
        stack.start("worker-a")

    def restart_worker() -> None:
        stack.kill("worker-b", signal.SIGTERM)
        stack.start("worker-b")

    def outage() -> None:
        stack.wait_ready("sink")  # its SQL endpoint is how the table is reached
        db = ledger.ClickHouse(stack.query_url, stack.admin_token)
        db.text("RENAME TABLE pulse.events TO pulse.events_offline", admin=True)
        time.sleep(outage_s)
        db.text("RENAME TABLE pulse.events_offline TO pulse.events", admin=True)

    def replay() -> None:
        replay_slice(stack.bootstrap, load, per_partition=150)

    def kill_broker() -> None:
        stack.kafka.nodes[1].kill()  # no controlled shutdown: leaders move when it is missed
        time.sleep(outage_s)
        stack.kafka.start_node(1)
        stack.kafka.wait_ready()

    def stop_leader() -> None:
        index = leader_of(stack.bootstrap, RAW_TOPIC, 0) - 1
        stack.kafka.nodes[index].stop()  # a controlled shutdown: leadership moves first
        time.sleep(outage_s)
        stack.kafka.start_node(index)
        stack.kafka.wait_ready()

    broker_faults = [
        Fault("broker-sigkill", kill_broker),
        Fault("leader-broker-stop", stop_leader),
    ]
    return [
        Fault("sink-sigkill-1", kill_sink),
        Fault("worker-sigkill", kill_worker),
        Fault("sink-sigkill-2", kill_sink),
        Fault("clickhouse-outage", outage),
        Fault("worker-restart", restart_worker),
        Fault("raw-replay", replay),
        Fault("sink-sigkill-3", kill_sink),
    ] + (broker_faults if stack.brokers > 1 else [])


def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    from confluent_kafka.admin import AdminClient

    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=30)
    return meta.topics[topic].partitions[partition].leader


def replay_slice(bootstrap: str, load: Load, per_partition: int) -> int:
    """Reads the last ``per_partition`` good envelopes of each partition back from the raw topic
    and produces them again (duplicates the streams stage must drop)."""
    load.producer.flush(30)
    hostile = {(p, o) for _, p, o in load.expected.hostile}
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "pulse-proof-replay",
            "enable.auto.commit": False,
        }
    )
    wanted: dict[int, set[int]] = {}
    for p, offsets in load.expected.good_offsets.items():
        chosen = [o for o in offsets[-per_partition:] if (p, o) not in hostile]
        if chosen:
            wanted[p] = set(chosen)
    consumer.assign([TopicPartition(RAW_TOPIC, p, min(o)) for p, o in wanted.items()])
    sent, deadline = 0, time.monotonic() + 60
    try:
        while wanted and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            left = wanted.get(msg.partition())
            if left is None or msg.offset() not in left:
                continue
            left.discard(msg.offset())
            if not left:
                del wanted[msg.partition()]
            load.producer.produce(RAW_TOPIC, msg.value(), msg.key())
            sent += 1
        load.producer.flush(30)
    finally:
        consumer.close()
    print(f"  replayed {sent} envelopes from the raw topic", flush=True)
    return sent


def dump_changelogs(bootstrap: str, data: Path) -> None:
    """The streams' state changelogs as JSON lines (offset, key, value), for a post-mortem."""
    import json

    for name in ("window-counts", "dedup-ids"):
        topic = f"pulse-streams-{name}-changelog"
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "pulse-proof-dump"})
        try:
            tps = [TopicPartition(topic, p) for p in range(4)]
            ends = {tp.partition: consumer.get_watermark_offsets(tp, 30)[1] for tp in tps}
            consumer.assign([TopicPartition(topic, p, 0) for p in range(4)])
            owed = {p for p, end in ends.items() if end > 0}
            deadline = time.monotonic() + 60  # a post-mortem: bounded, whatever the topic holds
            with (data / f"{name}.jsonl").open("w") as out:
                while owed and time.monotonic() < deadline:
                    for msg in consumer.consume(1000, 1.0):
                        if msg.error() is not None:
                            continue
                        key, value = (json.loads(v) if v else None
                                      for v in (msg.key(), msg.value()))  # fmt: skip
                        out.write(json.dumps([msg.partition(), msg.offset(), key, value]) + "\n")
                        if msg.offset() + 1 >= ends[msg.partition()]:
                            owed.discard(msg.partition())
        finally:
            consumer.close()


def locate_in_enriched(bootstrap: str, ids: set[str], data: Path) -> None:
    """Whether events missing from ClickHouse reached the enriched topic (streams or sink?)."""
    from schemas import ENRICHED_EVENT_BATCH, Decoder, default_catalog

    decode = Decoder(default_catalog(), [ENRICHED_EVENT_BATCH])
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "pulse-proof-locate",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        }
    )
    consumer.assign([TopicPartition("pulse.events.enriched", p, 0) for p in range(4)])
    found, idle = {}, time.monotonic()
    try:
        while time.monotonic() - idle < 5:
            for msg in consumer.consume(1000, 0.5):
                if msg.error():
                    continue
                idle = time.monotonic()
                for e in decode.decode(msg.value()).record["events"]:
                    if e["event_id"] in ids:
                        found[e["event_id"]] = (
                            msg.partition(),
                            msg.offset(),
                            e["source_partition"],
                            e["source_offset"],
                        )
    finally:
        consumer.close()
    (data / "missing-in-enriched.txt").write_text(
        "".join(f"{i} {found.get(i, 'NOT IN ENRICHED TOPIC')}\n" for i in sorted(ids))
    )


def run_faults(schedule: list[tuple[float, Fault]], stop: threading.Event) -> None:
    for at, fault in schedule:
        if stop.wait(max(0.0, at - time.time())):
            return
        fault.started = time.time()
        print(f"  fault {fault.name}", flush=True)
        try:
            fault.action()
        except Exception as exc:  # reported in the ledger; the other faults still happen
            fault.error = repr(exc)[:500]
        fault.ended = time.time()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.proof", description=__doc__.split("\n\n")[0]
    )
    add = parser.add_argument
    add("--events", type=int, default=1_000_000, help="good events in all")
    add("--shares", default="0.3,0.6",
        help="fault-free phases at these fractions of the measured capacity")  # fmt: skip
    add("--fault-share", type=float, default=0.6, help="the fault phase, as a fraction of it")
    add("--capacity-events", type=int, default=100_000,
        help="events produced as fast as possible to measure the capacity")  # fmt: skip
    add("--rates", default="", help="absolute events/s of the fault-free phases instead")
    add("--fault-rate", type=float, help="absolute events/s under faults (with --rates)")
    add("--steady-share", type=float, default=0.2, help="share of the events in each phase")
    add("--warmup-s", type=float, default=10.0, help="seconds of traffic before measuring")
    add("--warmup-rate", type=float, default=1000.0, help="events/s of the warm-up")
    add("--faults", default="all",
        help="comma-separated fault names to inject (default: all; none: none)")  # fmt: skip
    add("--outage-s", type=float, default=5.0)
    add("--settle-s", type=float, default=600.0, help="how long the drain may take")
    add("--max-p99-s", type=float, default=30.0,
        help="a fault-free phase whose p99 latency passes this fails the proof")  # fmt: skip
    add("--max-silence-s", type=float, default=60.0,
        help="a phase in which nothing is stored for longer fails the proof")  # fmt: skip
    add("--seed", type=int, default=7)
    add("--partitions", type=int, default=4)
    add("--brokers", type=int, default=1, choices=[1, 3],
        help="Kafka nodes; 3 adds broker faults (a node SIGKILLed, a leader node stopped)",
        )  # fmt: skip
    add("--data-dir", type=Path, help="default: a temporary directory")
    add("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args(argv)
    if args.rates and args.fault_rate is None:
        parser.error("--rates needs --fault-rate")
    return args


def plan(args: argparse.Namespace, capacity: float | None) -> list[Phase]:
    """The measured phases: fault-free ones, then the fault phase (pure)."""
    if args.rates:
        rates, fault_rate = [float(r) for r in args.rates.split(",") if r], args.fault_rate
    else:
        assert capacity is not None
        rates = [round(capacity * float(x)) for x in args.shares.split(",") if x]
        fault_rate = round(capacity * args.fault_share)
    steady = int(args.events * args.steady_share)
    left = args.events - steady * len(rates) - (0 if args.rates else args.capacity_events)
    if left <= 0:
        raise SystemExit("the phases leave no events for the fault phase: lower --steady-share")
    phases = [Phase(f"steady-{r:g}/s", r, steady) for r in rates]
    return [*phases, Phase(f"faults-{fault_rate:g}/s", fault_rate, left, faults=True)]


def measure_capacity(load: Load, db: ledger.ClickHouse, events: int) -> float:
    """Events per second from production to storage, producing as fast as possible."""
    run = load.run_phase(Phase("capacity", math.inf, events))
    db.wait("capacity", "SELECT count() FROM pulse.events", len(load.expected.ids), 600, 10)
    capacity = run.produced / (time.time() - run.started)
    print(f"CAPACITY events={run.produced} produced_at={run.achieved_rate:.0f}/s "
          f"stored_at={capacity:.0f}/s", flush=True)  # fmt: skip
    return capacity


def choose_faults(args: argparse.Namespace, stack: Stack, load: Load) -> list[Fault]:
    fault_list = faults(stack, load, args.outage_s)
    if args.faults == "all":
        return fault_list
    chosen = {f for f in args.faults.split(",") if f and f != "none"}
    unknown = chosen - {f.name for f in fault_list}
    if unknown:
        raise SystemExit(f"unknown faults {sorted(unknown)}: {[f.name for f in fault_list]}")
    return [f for f in fault_list if f.name in chosen]


def run_phases(load: Load, phases: list[Phase], fault_list: list[Fault], stop) -> None:
    for phase in phases:
        thread = None
        if phase.faults:
            duration = phase.events / phase.rate
            begin = time.time()
            schedule = [(begin + duration * (i + 0.5) / max(1, len(fault_list)), f)
                        for i, f in enumerate(fault_list)]  # fmt: skip
            thread = threading.Thread(target=run_faults, args=(schedule, stop), daemon=True)
            thread.start()
        run = load.run_phase(phase)
        print(f"  {phase.name}: {run.produced} events in {run.ended - run.started:.1f}s "
              f"({run.achieved_rate:.0f}/s)", flush=True)  # fmt: skip
        if thread is not None:
            thread.join()


def drain(db: ledger.ClickHouse, load: Load, settle_s: float) -> int:
    """Wait until events, window counts and dead letters are in; return the counts' start."""
    produced_at = time.time()
    db.wait("events", "SELECT count() FROM pulse.events", len(load.expected.ids), settle_s)
    since_ms = int(load.expected.phases[0].started * 1000) - 600_000
    total = sum(v for k, v in load.expected.windows.items()
                if k[0] >= since_ms // 60_000 * 60_000)  # fmt: skip
    db.wait("window counts", "SELECT sum(event_count) FROM pulse.counts_1m FINAL "
            f"WHERE window_start >= fromUnixTimestamp64Milli({since_ms})", total, 120)  # fmt: skip
    dead = sum(len(c.dead) for c, _, _ in load.expected.hostile)
    db.wait("dead letters", "SELECT count() FROM (SELECT DISTINCT source_partition, "
            "source_offset, batch_index FROM pulse.dead_letters)", dead, 120)  # fmt: skip
    print(f"  drained {time.time() - produced_at:.1f}s after the load", flush=True)
    return since_ms


def moves(db: ledger.ClickHouse, load: Load, silence_s: float) -> bool:
    """Whether the stack stored everything produced so far (the warm-up) before anything is
    measured; it has not if the count stops moving for ``silence_s``."""
    wanted = len(load.expected.ids)
    got = db.wait("warm-up", "SELECT count() FROM pulse.events", wanted, 600, silence_s)
    if got != wanted:
        print(f"PROOF FAIL: the stack stored {got} of the warm-up's {wanted} events and then "
              f"nothing for {silence_s:.0f}s", flush=True)  # fmt: skip
    return got == wanted


def judge_latency(db: ledger.ClickHouse, load: Load, max_p99_s: float, max_silence_s: float):
    """Fault-free phases (the warm-up too, not the capacity burst) within the p99 bound, and
    no phase with nothing stored for longer than the silence bound."""
    slow, silent = [], []
    for run in load.expected.phases:
        name = run.phase.name
        p99_s = ledger.latency(db, run.started, run.ended)["p99"] / 1000
        if not run.phase.faults and name != "capacity" and p99_s > max_p99_s:
            slow.append(f"{name}: p99 {p99_s:.1f}s > {max_p99_s:g}s")
        stored = ledger.stored_seconds(db, run.started, run.ended)
        silence = longest_silence_s(stored, run.started, run.ended)
        if silence > max_silence_s:
            silent.append(f"{name}: nothing stored for {silence:.0f}s > {max_silence_s:g}s")
    return [
        ledger.Line("fault_free_phases_over_p99_bound", 0, len(slow), slow),
        ledger.Line("phases_silent_over_bound", 0, len(silent), silent),
    ]


def verdict(db, load: Load, stack: Stack, fault_list: list[Fault], since_ms: int) -> list:
    lines = ledger.check(db, load.expected, RAW_TOPIC, since_ms)
    done = [f for f in fault_list if f.started and not f.error]
    missed = [f"{f.name}: {f.error or 'not reached'}" for f in fault_list if f not in done]
    lines.append(ledger.Line("faults_injected", len(fault_list), len(done), missed))
    crashes = [f"{c.name} exited {c.returncode}: {c.log_tail[-300:]}" for c in stack.crashes]
    lines.append(ledger.Line("crashes", 0, len(stack.crashes), crashes))
    down = [f"node {n.node_id}" for n in stack.kafka.nodes if not n.running]
    lines.append(ledger.Line("kafka_nodes_running", len(stack.kafka.nodes),
                             len(stack.kafka.nodes) - len(down), down))  # fmt: skip
    errors = [f"{name}: {e}" for name in stack.members for e in stack.log_errors(name)]
    lines.append(ledger.Line("logged_errors", 0, len(errors), errors))
    return lines


def post_mortem(db: ledger.ClickHouse, load: Load, stack: Stack, data: Path) -> None:
    """With --keep: where the missing events were, and the streams' changelogs."""
    missing = ledger.missing_ids(db, load.expected)
    (data / "missing.txt").write_text(
        "".join(f"{i} {load.where.get(i)}\n" for i in sorted(missing))
    )
    dump_changelogs(stack.bootstrap, data)
    if missing:
        locate_in_enriched(stack.bootstrap, set(missing), data)


def _interrupted(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # runs the finally below: the stack stops, no orphans


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="pulse-proof-"))
    stack = Stack(data, args.partitions, args.brokers)
    stop = threading.Event()
    started = time.time()
    load: Load | None = None
    ok = False
    print(f"proof: {args.events} events, data in {data}")
    try:
        stack.boot()
        print(f"  stack ready after {time.time() - started:.1f}s", flush=True)
        n_cases = len(Corpus(int(time.time() * 1000), args.seed).cases())
        load = Load(stack.bootstrap, RAW_TOPIC, args.seed, max(1, args.events // (n_cases + 1)))
        if args.keep:
            load.where = {}
        fault_list = choose_faults(args, stack, load)
        db = ledger.ClickHouse(stack.query_url, stack.admin_token)
        if args.warmup_s:
            warmup_rate = float(args.rates.split(",")[0]) if args.rates else args.warmup_rate
            load.run_phase(Phase("warmup", warmup_rate, int(warmup_rate * args.warmup_s)))
        stack.wait_ready("sink")
        if not moves(db, load, args.max_silence_s):
            return 1
        capacity = None if args.rates else measure_capacity(load, db, args.capacity_events)
        phases = plan(args, capacity)
        print(f"  phases: {[p.name for p in phases]}", flush=True)
        run_phases(load, phases, fault_list, stop)
        load.finish_hostile()
        stack.wait_ready("sink")
        since_ms = drain(db, load, args.settle_s)
        lines = verdict(db, load, stack, fault_list, since_ms)
        lines += judge_latency(db, load, args.max_p99_s, args.max_silence_s)
        for line in lines:
            print(line)
        if load.where is not None:
            post_mortem(db, load, stack, data)
        report_latency(db, load, fault_list)
        ok = all(line.ok for line in lines)
        print(f"PROOF {'ok' if ok else 'FAIL'} in {time.time() - started:.0f}s", flush=True)
        return 0 if ok else 1
    finally:
        stop.set()
        if load is not None:
            load.close()  # before the broker goes: no reconnect noise
        stack.shutdown()
        if not ok:  # a failed (or interrupted) proof keeps everything for its post-mortem
            print(f"proof data and logs kept in {data}", flush=True)
        elif not args.keep:  # the logs stay, for reading a passing run too
            for bulky in ("kafka", "clickhouse", "worker-a", "worker-b"):
                shutil.rmtree(data / bulky, ignore_errors=True)
            print(f"proof logs kept in {data}", flush=True)


def report_latency(db: ledger.ClickHouse, load: Load, fault_list: list[Fault]) -> None:
    steady: dict[float, float] = {}
    for run in load.expected.phases:
        q = ledger.latency(db, run.started, run.ended)
        print(
            f"LATENCY phase={run.phase.name} achieved={run.achieved_rate:.0f}/s events={q['n']} "
            f"p50={q['p50']:.0f}ms p95={q['p95']:.0f}ms p99={q['p99']:.0f}ms "
            f"max={q['max']:.0f}ms"
        )
        if not run.phase.faults and run.phase.name.startswith("steady-"):
            steady[run.phase.rate] = q["p99"]
    faulted = [run for run in load.expected.phases if run.phase.faults]
    if not faulted or not steady:
        return
    run = faulted[0]
    # Normal is the fault-free p99 at the fault phase's rate (else at the nearest rate).
    steady_p99 = steady[min(steady, key=lambda r: abs(r - run.phase.rate))]
    series = ledger.p99_by_second(db, run.started, run.ended)
    threshold = normal_threshold_ms(steady_p99)
    done = [f for f in fault_list if f.started]
    for i, fault in enumerate(done):
        # Searched to the end of the load: when faults come faster than the stack recovers,
        # the figure spans the later faults too, and says when the next one came.
        until = max(run.ended, fault.started)
        back = recovery_s(series, fault.started, threshold, until)
        took = f"{fault.ended - fault.started:.1f}s"
        verdict = (
            f"back_to_normal_after={back:.0f}s"
            if back is not None
            else f"not_back_to_normal_before_the_load_ended={until - fault.started:.0f}s"
        )
        following = (
            f" next_fault_after={done[i + 1].started - fault.started:.0f}s"
            if i + 1 < len(done)
            else ""
        )
        print(
            f"RECOVERY fault={fault.name} action_took={took} {verdict}{following} "
            f"(normal: p99 of each second <= {threshold:.0f}ms for 3s)"
        )


if __name__ == "__main__":
    sys.exit(main())
