"""``python -m streams bench``: the streams job's throughput next to Quix Streams, same run.

One embedded broker; the same input messages (batch envelopes of real-looking traffic) go to
two topics. The Pulse worker (a separate process, as deployed) and a Quix Streams
implementation of the same job (``bench_quix``, in its own virtualenv) each consume theirs.
Each rate runs from the first input event processed to 95% of the events counted (start-up and
the group join excluded, every stage of the job included);
peak RSS is the worker's VmHWM. A separate probe measures RSS with N live window keys.

The same run also times the job with no framework at all (``Processor.process`` over the same
messages in this process, no Kafka), before and after the worker's run, and fastavro's
decoding and encoding alone: the rates no worker built on them can exceed, printed as ceilings
on the ratio to Quix; the RESULT line gives the worker's share of the first. The worker's CPU
over its measured interval gives the same share per CPU second, which the broker's CPU does not
move. The worker runs twice, at-least-once and exactly-once
(the same input, a group each), to show what transactions cost. A fixed pure-Python loop, timed
first, states the VM's speed, so that figures of different days can be compared.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from schemas import (
    ANALYTICS_EVENT,
    ANALYTICS_EVENT_BATCH,
    ENRICHED_EVENT_BATCH,
    Decoder,
    Encoder,
    default_catalog,
)
from schemas.identity import Pseudonymizer
from schemas.machine import vm_speed
from streams.catalog.org import GroupRefs
from streams.job.enrich import no_people
from streams.job.processor import Processor
from streams.job.validate import Limits
from streams.kafka.broker import EmbeddedBroker, free_port
from streams.kafka.producer import EventProducer, SessionBatcher
from streams.tools.traffic import Traffic, TrafficConfig

REPO = Path(__file__).resolve().parents[2]
# The worker renders /metrics for each poll (3% of its time at 0.1 s); a quarter second keeps
# the marks' error under 2% of a 10 s run.
POLL_S = 0.25
QUIX_REQUIREMENTS = ["quixstreams==3.28.1", "fastavro==1.13.1"]


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _topics(admin: AdminClient, names: list[str], partitions: int) -> None:
    config = {"retention.ms": "604800000", "retention.bytes": "-1"}  # Quix reads these
    for future in admin.create_topics(
        [NewTopic(n, partitions, 1, config=config) for n in names]
    ).values():
        future.result()


def _messages(events: int, batch: int, seed: int) -> list[tuple[bytes, bytes, int]]:
    now = int(time.time() * 1000)
    config = TrafficConfig(
        seed=seed,
        start_ms=now - 3_000_000,
        mean_gap_ms=2_900_000 / events,
        late_fraction=0.02,
        duplicate_fraction=0.0,
    )
    out: list[tuple[bytes, bytes, int]] = []

    class Collect:
        def send_batch(self, evs: list[dict]) -> None:
            from schemas import ANALYTICS_EVENT_BATCH, Encoder, default_catalog

            encode = Encoder(default_catalog().latest(ANALYTICS_EVENT_BATCH))
            out.append(
                (evs[0]["session_id"].encode(), encode({"events": evs}), evs[0]["event_time"])
            )

    batcher = SessionBatcher(Collect(), batch)  # type: ignore[arg-type]
    for event in Traffic(config).take(events):
        batcher.add(event)
    batcher.flush()
    return out


def _publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes, int]]) -> None:
    producer = EventProducer(bootstrap, topic)
    for key, value, ts in messages:
        producer.send_raw(key, value, ts)
    producer.flush()


def _run_pulse(
    bootstrap: str, tag: str, events: int, partitions: int, workdir: Path, guarantee: str
) -> tuple[float, float]:
    raw = f"raw-pulse-{tag}"
    if guarantee != "at_least_once":  # the same input, read again by a group of its own
        tag = f"{tag}-{guarantee.replace('_', '-')}"
    web = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env.update(
        {
            "PULSE_KAFKA_BOOTSTRAP": bootstrap,
            "PULSE_PROCESSING_GUARANTEE": guarantee,
            "PULSE_TOPIC_RAW": raw,
            "PULSE_TOPIC_ENRICHED": f"enriched-pulse-{tag}",
            "PULSE_TOPIC_COUNTS": f"counts-pulse-{tag}",
            "PULSE_TOPIC_DLQ": f"dlq-pulse-{tag}",
            "PULSE_TOPIC_CATALOG": f"catalog-{tag}",
            "PULSE_APP_ID": f"bench-{tag}",
            "PULSE_PARTITIONS": str(partitions),
            "PULSE_USER_ID_SECRET": BENCH_SECRET.decode(),
            "PULSE_WEB_PORT": str(web),
            "PULSE_DATA_DIR": str(workdir / "pulse"),
            "PULSE_LOG_LEVEL": "warning",
        }
    )
    log = open(workdir / f"pulse-worker-{guarantee}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "worker"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    marks: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and "t95" not in marks:
            time.sleep(POLL_S)
            if proc.poll() is not None:
                tail = Path(log.name).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker exited {proc.returncode}:\n{tail}")
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=2).read()
            except OSError:
                continue
            match = re.search(rb"^pulse_streams_events_in_total (\S+)", text, re.M)
            n = float(match.group(1)) if match else 0.0
            # Each mark is taken half a poll late on average, both alike: the rate is exact
            # on average. The CPU is read at the same instant as the time.
            now, cpu = time.time(), _cpu_s(proc.pid)
            if n > 0 and "t0" not in marks:
                marks["t0"], marks["n0"], marks["c0"] = now, n, cpu
            if n >= events * 0.95 and "t0" in marks:
                marks["t95"], marks["n95"], marks["c95"] = now, n, cpu
        counted, wall = marks["n95"] - marks["n0"], marks["t95"] - marks["t0"]
        cores = (marks["c95"] - marks["c0"]) / wall
        return counted / wall, _peak_rss_mb(proc.pid), cores
    finally:
        _stop(proc)


def quix_python(venv: Path) -> Path:
    """A virtualenv with Quix Streams, created on first use (pip, from the package index)."""
    python = venv / "bin" / "python"
    marker = venv / ".pulse-requirements"
    wanted = " ".join(QUIX_REQUIREMENTS)
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *QUIX_REQUIREMENTS], check=True)
        marker.write_text(wanted)
    return python


def _run_quix(
    python: Path, bootstrap: str, tag: str, events: int, workdir: Path
) -> tuple[float, float]:
    cmd = [
        str(python),
        "-m",
        "streams.tools.bench_quix",
        "--bootstrap",
        bootstrap,
        "--topic",
        f"raw-quix-{tag}",
        "--out",
        f"enriched-quix-{tag}",
        "--counts",
        f"counts-quix-{tag}",
        "--group",
        f"quix-{tag}",
        "--state-dir",
        str(workdir / "quix-state"),
        "--events",
        str(events),
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = open(workdir / "quix.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.match(r"QUIX t0=(\S+) t95=(\S+)", line)
            if match:
                t0, t95 = float(match.group(1)), float(match.group(2))
                return events * 0.95 / (t95 - t0), _peak_rss_mb(proc.pid)
        raise RuntimeError(f"Quix job exited {proc.wait()}; see {workdir / 'quix.log'}")
    finally:
        _stop(proc)


BENCH_SECRET = b"benchmark-secret-0123456789"


def people_of(messages: list[tuple[bytes, bytes, int]], secret: bytes) -> dict[str, tuple]:
    """A people table for the input's users: each in one of 50 teams, under one of 10
    departments of one organisation (4 group refs per user, shared as the worker shares
    them)."""
    keyed, refs = Pseudonymizer(secret), GroupRefs()
    decode = Decoder(default_catalog(), [ANALYTICS_EVENT, ANALYTICS_EVENT_BATCH])
    records = [decode(value) for _, value, _ in messages]
    events = [e for r in records for e in r.get("events", [r])]
    table = {}
    for i, user in enumerate(sorted({e["user_id"] for e in events if e["user_id"]})):
        team = i % 50
        groups = [f"team-{team}", f"sub-department-{team % 20}", f"department-{team % 5}", "acme"]
        table[keyed(user)] = refs({"groups": [{"ref": f"group:default/{g}"} for g in groups]})
    return table


def _processor_rate(
    messages: list[tuple[bytes, bytes, int]], partitions: int, people: dict[str, tuple] | None
) -> tuple[int, float, float, list[bytes]]:
    """(events, seconds, CPU seconds, enriched messages) of the pure Processor, flushed every
    200 envelopes (more often than the worker's once a second)."""
    processor = Processor(
        secret=BENCH_SECRET,
        limits=Limits(),
        window_ms=60_000,
        retention_ms=3_600_000,
        dedup_horizon_ms=600_000,
        dedup_max_ids=1_000_000,
        counts_store={},
        people=people.get if people is not None else no_people,
    )  # fmt: skip
    events = 0
    enriched: list[bytes] = []
    start, start_cpu = time.perf_counter(), time.thread_time()
    for offset, (key, value, _) in enumerate(messages):
        outcome = processor.process(key, value, [], "raw", zlib.crc32(key) % partitions, offset)
        events += outcome.events_out
        if outcome.enriched:
            enriched.append(outcome.enriched)
        if offset % 200 == 199:
            processor.flush()
    processor.flush()
    return events, time.perf_counter() - start, time.thread_time() - start_cpu, enriched


def ceilings(messages: list[tuple[bytes, bytes, int]], partitions: int) -> dict[str, float]:
    """Events/s of the job with no framework (the pure Processor), without and with a people
    table to stamp groups from, and of fastavro's decode + encode alone."""
    # Without and with groups alternately, twice: the VM's speed moves within seconds.
    people = people_of(messages, BENCH_SECRET)
    events, job, job_cpu, enriched = _processor_rate(messages, partitions, None)
    _, job_with_groups, _, stamped = _processor_rate(messages, partitions, people)
    _, again, again_cpu, _ = _processor_rate(messages, partitions, None)
    _, again_with_groups, _, _ = _processor_rate(messages, partitions, people)
    job, job_cpu = (job + again) / 2, (job_cpu + again_cpu) / 2
    job_with_groups = (job_with_groups + again_with_groups) / 2
    catalog = default_catalog()
    read = Decoder(catalog, ENRICHED_EVENT_BATCH)
    with_groups = sum(1 for v in stamped for e in read(v)["events"] if len(e["groups"]) == 4)
    decode = Decoder(catalog, [ANALYTICS_EVENT, ANALYTICS_EVENT_BATCH])
    records = [Decoder(catalog, ENRICHED_EVENT_BATCH)(v) for v in enriched]
    encode = Encoder(catalog.latest(ENRICHED_EVENT_BATCH))
    start = time.perf_counter()
    for _, value, _ in messages:
        decode(value)
    decoding = time.perf_counter() - start
    start = time.perf_counter()
    for record in records:
        encode(record)
    encoding = time.perf_counter() - start
    return {
        "job_alone": events / job,
        "job_alone_cpu": events / job_cpu,
        "job_with_groups": events / job_with_groups,
        "stamped_share": with_groups / events,
        "decode_us": decoding / events * 1e6,
        "encode_us": encoding / events * 1e6,
        "codec_alone": events / (decoding + encoding),
    }


def window_keys_rss(keys: int) -> float:
    """Peak RSS (MB) of a process holding ``keys`` live window keys in a Processor."""
    code = f"""
import re, time
from pathlib import Path
from streams.job import windows
from streams.job.processor import Processor
from streams.job.validate import Limits
p = Processor(secret=b"x" * 32, limits=Limits(), window_ms=60_000, retention_ms=3_600_000,
              dedup_horizon_ms=600_000, dedup_max_ids=1_000_000, counts_store={{}})
now = int(time.time() * 1000)
for i in range({keys}):
    key = windows.WindowKey(now - now % 60_000 - (i % 60) * 60_000, "backstage.acme.internal",
                            "plugin-" + str(i % 50), "page:extension-" + str(i), "navigate", i % 4)
    p.counter.add(key, i, 1.0, now)
p.flush()
assert len(p.counter) == {keys}, len(p.counter)
print(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip()) / 1024


def dedup_ids_rss(ids: int) -> tuple[float, float]:
    """(RSS before, peak RSS) in MB of a process holding ``ids`` event ids for de-duplication,
    flushed into chunks as the worker does (the horizon's memory at PULSE_DEDUP_MAX_IDS)."""
    code = f"""
import re, time, uuid
from pathlib import Path
from streams.job.dedup import Deduplicator
def rss(field):
    return int(re.search(field + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
before = rss("VmRSS")
d = Deduplicator(horizon_ms=600_000, max_ids={ids})
now = int(time.time() * 1000)
for i in range({ids}):
    d.check(i % 4, str(uuid.UUID(int=i, version=4)), now, i)
    if i % 20_000 == 19_999:
        d.take_chunks()
d.take_chunks()
assert d.size == {ids}, d.size
print(before, rss("VmHWM"))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    before, peak = (int(x) / 1024 for x in out.stdout.split())
    return before, peak


def _report_ceilings(results: dict[str, float], bound: dict[str, float]) -> None:
    """Print the ceilings beside the worker's figures; the Processor's, and the worker's share
    of it per CPU second, go into ``results``."""
    results["ceiling"] = bound["job_alone"]
    quix_rate = results.get("quix")
    for name, what in (
        ("job_alone", "the job with no framework (Processor alone, no Kafka)"),
        ("job_with_groups", "the same, stamping each user's 4 groups from a people table"),
        ("codec_alone", "fastavro decode + encode alone"),
    ):
        ratio = f" = {bound[name] / quix_rate:.2f}x Quix" if quix_rate else ""
        print(f"ceiling: {what}: {bound[name]:,.0f} events/s{ratio}", flush=True)
    print(
        f"  ({bound['stamped_share']:.0%} of events stamped with groups, the others have no "
        f"user; decode {bound['decode_us']:.1f} us + encode {bound['encode_us']:.1f} us per event)",
        flush=True,
    )
    # Per CPU second, the share does not move with the CPU the broker or the VM's neighbours
    # take from the worker while it runs.
    per_cpu = results["streams"] / results["worker_cores"]
    results["cpu_share"] = per_cpu / bound["job_alone_cpu"]
    print(
        f"per CPU second: the worker {per_cpu:,.0f} events, the Processor alone "
        f"{bound['job_alone_cpu']:,.0f}: share {results['cpu_share']:.2f}",
        flush=True,
    )


def run(
    events: int,
    batch: int,
    partitions: int,
    seed: int,
    quix: bool,
    keys: int,
    quix_venv: Path,
    exactly_once: bool = True,
) -> dict[str, float]:
    tag = f"{int(time.time())}"
    results: dict[str, float] = {}
    workdir = REPO / ".pulse" / "bench" / f"run-{tag}"  # logs and state stay for inspection
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"logs: {workdir}", flush=True)
    results["vm_speed_s"] = vm_speed()
    print(f"vm speed: fixed pure-Python loop in {results['vm_speed_s']:.2f} s", flush=True)
    with EmbeddedBroker(port=free_port()) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        _topics(admin, [f"raw-pulse-{tag}", f"raw-quix-{tag}"], partitions)
        del admin  # else it outlives the broker and logs failed reconnects
        messages = _messages(events, batch, seed)
        print(
            f"input: {events} events in {len(messages)} messages ({batch} per envelope), "
            f"{sum(len(v) for _, v, _ in messages) / events:.0f} B/event",
            flush=True,
        )
        _publish(broker.bootstrap, f"raw-pulse-{tag}", messages)
        if quix:
            _publish(broker.bootstrap, f"raw-quix-{tag}", messages)
        # This VM's speed moves within minutes: the ceiling is taken on both sides of the
        # worker's run and averaged.
        before = ceilings(messages, partitions)
        rate, rss, cores = _run_pulse(
            broker.bootstrap, tag, events, partitions, workdir, "at_least_once"
        )
        print(
            f"pulse: {rate:,.0f} events/s, peak RSS {rss:.0f} MB; the worker used "
            f"{cores:.2f} cores ({rate / cores:,.0f} events per CPU second)",
            flush=True,
        )
        results.update(streams=rate, rss_mb=rss, worker_cores=cores)
        if exactly_once:
            eos, _, _ = _run_pulse(
                broker.bootstrap, tag, events, partitions, workdir, "exactly_once"
            )
            results["exactly_once"] = eos
            print(
                f"pulse exactly-once: {eos:,.0f} events/s = {eos / rate:.2f}x at-least-once",
                flush=True,
            )
        if quix:
            qrate, qrss = _run_quix(quix_python(quix_venv), broker.bootstrap, tag, events, workdir)
            print(f"quix:  {qrate:,.0f} events/s, peak RSS {qrss:.0f} MB", flush=True)
            results.update(quix=qrate)
        after = ceilings(messages, partitions)
        print(
            f"the Processor alone before and after the worker: {before['job_alone']:,.0f} and "
            f"{after['job_alone']:,.0f} events/s",
            flush=True,
        )
        _report_ceilings(results, {k: (before[k] + after[k]) / 2 for k in after})
    results["keys_rss_mb"] = window_keys_rss(keys)
    print(f"window state: {keys:,} live window keys -> peak RSS {results['keys_rss_mb']:.0f} MB")
    before, peak = dedup_ids_rss(1_000_000)
    results["dedup_rss_mb"] = peak
    print(
        f"de-duplication horizon: 1,000,000 ids (PULSE_DEDUP_MAX_IDS) -> peak RSS {peak:.0f} MB "
        f"({before:.0f} MB before)"
    )
    return results


def result_line(results: dict[str, float]) -> str:
    quix = results.get("quix")
    ratio = results["streams"] / quix if quix else float("nan")
    return (
        f"RESULT streams={results['streams']:.0f} quix={quix or float('nan'):.0f} "
        f"ratio={ratio:.2f} ceiling={results['ceiling']:.0f} "
        f"share={results['streams'] / results['ceiling']:.2f} rss_mb={results['rss_mb']:.0f}"
    )
