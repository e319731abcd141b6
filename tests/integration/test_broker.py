"""The embedded Apache Kafka: clear errors, a clean stop that leaves no JVM, and a broker
restarted under a running stack that loses and duplicates nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.errors import BrokerError, KafkaUnavailableError
from streams.kafka.broker import EmbeddedBroker, free_port
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings
from streams.tools.traffic import Traffic, TrafficConfig

from .conftest import REPO, wait_for
from .kafka_helpers import produce, recent_traffic
from .test_collector import events, post, start_collector
from .test_pipeline import scalar


def jvm_children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(pid)],
                         capture_output=True, text=True, check=False).stdout  # fmt: skip
    return [int(line.split()[0]) for line in out.splitlines() if "java" in line]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_a_taken_port_and_a_missing_java_are_one_clear_error(monkeypatch, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port 127.0.0.1:{port} .* in use"):
            EmbeddedBroker(port=port, data_dir=tmp_path).start()
    monkeypatch.setenv("PATH", str(tmp_path))  # no java there
    with pytest.raises(BrokerError, match="no Java on PATH"):
        EmbeddedBroker(port=free_port(), data_dir=tmp_path).start()


def test_a_port_taken_after_it_was_picked_is_picked_again(tmp_path):
    # Another process binds the controller port the broker picked before the JVM does: bound
    # but not listening, so no check before the launch can see it; the JVM's bind fails.
    kafka = EmbeddedBroker(port=0, data_dir=tmp_path)
    picked = kafka.nodes[0].controller_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", picked))
        with kafka:
            assert kafka.nodes[0].controller_port != picked
            assert wait_for_broker(kafka.bootstrap, timeout_s=30) is not None
    assert "Address already in use" in (tmp_path / "node-1.log").read_text()


def start_cli_broker(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "broker", "--port", str(port), "--no-topics"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    for line in proc.stdout:  # type: ignore[union-attr]
        if "Kafka ready on" in line:
            return proc
    raise AssertionError(f"broker exited with {proc.wait()} before it was ready")


def test_the_cli_broker_stops_on_sigint_and_leaves_no_jvm_even_when_killed(tmp_path):
    proc = start_cli_broker(tmp_path, free_port())
    jvms = jvm_children(proc.pid)
    assert len(jvms) == 1
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    assert not alive(jvms[0])

    proc = start_cli_broker(tmp_path, free_port())
    jvms = jvm_children(proc.pid)
    proc.kill()  # no chance to clean up: the JVM must still go
    proc.wait(10)
    wait_for(lambda: not alive(jvms[0]), 60, "the JVM to die with its parent")


def test_a_broker_restart_under_a_running_stack_loses_and_duplicates_nothing(
    pulse_env, processes, tmp_path, monkeypatch
):
    kafka = EmbeddedBroker(port=free_port(), data_dir=tmp_path / "kafka").start()
    try:
        bootstrap = kafka.bootstrap
        processes.env.values["PULSE_KAFKA_BOOTSTRAP"] = bootstrap
        monkeypatch.setenv("PULSE_KAFKA_BOOTSTRAP", bootstrap)
        ensure_topics(wait_for_broker(bootstrap), pulse_topics(KafkaSettings()), 4)
        first, second = recent_traffic(3, 600, 400)
        producer = EventProducer(bootstrap, pulse_env["PULSE_TOPIC_RAW"])
        produce(producer, first)
        processes.start("streams", "streams", "worker")
        processes.start("sink", "sinks", "run")
        collector, base = start_collector(tmp_path, bootstrap, pulse_env["PULSE_TOPIC_RAW"])
        try:
            assert post(base, {"events": events(5, "s-before")})[0] == 202
            total = len(first) + 5
            wait_for(lambda: scalar("SELECT count() FROM pulse.events") >= total, 180,
                     "the first events in ClickHouse")  # fmt: skip

            kafka.stop()  # a controlled shutdown, then the same node again on its data
            kafka.start()

            produce(producer, second)  # the producer reconnects by itself
            # The collector answers 503 until its producer is connected again.
            after = events(5, "s-after")  # the same ids on every try: a retry is a duplicate
            wait_for(lambda: post(base, {"events": after})[0] == 202, 120,
                     "the collector to accept again")  # fmt: skip
            total += len(second) + 5
            wait_for(lambda: scalar("SELECT count() FROM pulse.events") >= total, 240,
                     f"{total} events after the restart")  # fmt: skip
            wait_for(lambda: scalar("SELECT sum(event_count) FROM pulse.counts_1m FINAL")
                     >= total, 120, "the window counts after the restart")  # fmt: skip
            assert scalar("SELECT count() FROM pulse.events") == total  # no duplicate rows
            assert scalar("SELECT uniqExact(event_id) FROM pulse.events") == total
            assert scalar("SELECT sum(event_count) FROM pulse.counts_1m FINAL") == total
            assert scalar("SELECT count() FROM pulse.dead_letters") == 0
        finally:
            collector.terminate()
            collector.wait(30)
        assert processes.stop("sink") == 0
        assert processes.stop("streams") == 0
        for name in ("streams", "sink"):
            assert "Traceback" not in processes.log(name), processes.log(name)[-3000:]
    finally:
        kafka.stop()


def kafka_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "streams", "kafka", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def group_lags(bootstrap: str, group: str, topic: str) -> dict[tuple[str, int], str]:
    out = kafka_cli("consumer-groups", "--bootstrap-server", bootstrap, "--describe",
                    "--group", group)  # fmt: skip
    lags = {}
    for line in out.splitlines():
        cols = line.split()
        # Only the input topic: faust's group also holds its changelogs (read from the start
        # on recovery, never committed) and its leader-election topic.
        # A partition nothing was ever written to has no offset to commit ("-").
        if len(cols) >= 6 and cols[0] == group and cols[1] == topic and cols[2].isdigit():
            lags[(cols[1], int(cols[2]))] = "0" if cols[4] == "0" else cols[5]
    return lags


def test_kcat_and_the_consumer_groups_command_read_a_running_pipeline(pulse_env, processes, broker):
    bootstrap, raw = broker.bootstrap, pulse_env["PULSE_TOPIC_RAW"]
    ensure_topics(wait_for_broker(bootstrap), pulse_topics(KafkaSettings()), 4)
    start = int(time.time() * 1000) - 60_000
    events = Traffic(TrafficConfig(seed=5, start_ms=start, late_fraction=0.0,
                                   duplicate_fraction=0.0)).take(300)  # fmt: skip
    producer = EventProducer(bootstrap, raw)
    for event in events:
        producer.send(event)
    producer.flush()
    # A producer that is not Pulse's: kcat writes a message that is not Avro.
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", raw, "-k", "kcat-key"],
                   input=b"not an event", check=True, timeout=30)  # fmt: skip
    processes.start("streams", "streams", "worker")
    processes.start("sink", "sinks", "run")
    wait_for(lambda: scalar("SELECT count() FROM pulse.events") >= len(events), 180, "events")
    wait_for(lambda: scalar("SELECT count() FROM pulse.dead_letters") >= 1, 60, "the dead letter")

    listing = subprocess.run(["kcat", "-L", "-b", bootstrap], capture_output=True, text=True,
                             check=True, timeout=30).stdout  # fmt: skip
    for topic in pulse_topics(KafkaSettings()):
        assert f'topic "{topic}" with 4 partitions' in listing, listing

    def first(topic: str) -> str:
        return subprocess.run(
            ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-c", "1", "-e",
             "-f", "%k|%h\n"], capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip

    enriched = first(pulse_env["PULSE_TOPIC_ENRICHED"])
    for header in ("pulse.source.topic=", "pulse.source.partition=", "pulse.source.offset="):
        assert header in enriched, enriched
    dead = first(pulse_env["PULSE_TOPIC_DLQ"])
    assert dead.startswith("kcat-key|") and "pulse.error.reason=unknown_schema" in dead, dead
    assert f"pulse.source.topic={raw}" in dead

    sink = pulse_env["PULSE_GROUP_PREFIX"]
    groups = [(pulse_env["PULSE_APP_ID"], raw),
              (f"{sink}-events", pulse_env["PULSE_TOPIC_ENRICHED"]),
              (f"{sink}-counts_1m", pulse_env["PULSE_TOPIC_COUNTS"]),
              (f"{sink}-dead_letters", pulse_env["PULSE_TOPIC_DLQ"])]  # fmt: skip
    for group, topic in groups:  # lag 0 on every partition once drained and committed
        wait_for(lambda g=group, t=topic: len(lags := group_lags(bootstrap, g, t)) == 4
                 and set(lags.values()) == {"0"}, 90, f"lag 0 in {group}")  # fmt: skip
    assert processes.stop("sink") == 0 and processes.stop("streams") == 0


def test_a_topic_the_broker_refuses_is_an_error_naming_it(broker):
    admin = wait_for_broker(broker.bootstrap)
    name = f"refused-{time.time_ns()}"
    with pytest.raises(KafkaUnavailableError, match=f"creating topic {name}:.*replication"):
        ensure_topics(admin, [name], 1, replication=3)  # one broker cannot hold 3 copies
    with pytest.raises(KafkaUnavailableError, match=f"creating topic {name}:"):
        ensure_topics(admin, [name], 1, config={"cleanup.policy": "no-such-policy"})


def test_a_cluster_id_starting_with_a_dash_formats(tmp_path):
    # One random id in 64 starts with "-", which Kafka's storage tool read as an option.
    tmp_path.joinpath("cluster-id").write_text("-" + "A" * 21)
    with EmbeddedBroker(port=0, data_dir=tmp_path) as kafka:
        assert wait_for_broker(kafka.bootstrap, timeout_s=30) is not None


def test_a_worker_starts_while_a_node_of_three_is_down(pulse_env, processes, tmp_path):
    # A starting worker declares faust's topics, asking a broker of its metadata where the
    # controller is. Until the cluster fences a killed node (9 s), the metadata still lists
    # it; which broker is asked first follows set order, so the hash seed: with three seeds
    # the dead node comes first for at least one of the workers started right after the kill.
    with EmbeddedBroker(port=0, brokers=3, data_dir=tmp_path / "kafka") as kafka:
        processes.env.values["PULSE_KAFKA_BOOTSTRAP"] = kafka.bootstrap
        processes.env.values["PULSE_REPLICATION_FACTOR"] = "3"
        ensure_topics(wait_for_broker(kafka.bootstrap), pulse_topics(KafkaSettings()), 4, 3)
        kafka.nodes[1].kill()
        workers = {
            f"streams-{seed}": processes.start(f"streams-{seed}", "streams", "worker",
                                               PYTHONHASHSEED=str(seed),
                                               PULSE_WEB_PORT=str(free_port()))
            for seed in range(3)
        }  # fmt: skip
        for name, worker in workers.items():
            wait_for(lambda n=name, w=worker: "[^Worker]: Ready" in processes.log(n)
                     or w.poll() is not None, 120, f"{name} ready or gone")  # fmt: skip
            assert worker.poll() is None, processes.log(name)[-3000:]
        for name in workers:
            assert processes.stop(name) == 0
            assert "Traceback" not in processes.log(name), processes.log(name)[-3000:]
