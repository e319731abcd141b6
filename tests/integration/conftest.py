"""Real services for integration tests: Apache Kafka (KRaft, one node) and a chDB engine.

Nothing is mocked and nothing is skipped: if the broker binary or chDB is missing, these fixtures
fail. Each test gets its own topics, consumer groups and ClickHouse database (or chDB path, for
a sink subprocess), so tests never see each other's data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import clickhouse_connect
import pytest

from streams.kafka.broker import EmbeddedBroker, free_port
from streams.kafka.dist import kafka_version

REPO = Path(__file__).resolve().parents[2]
SECRET = "integration-test-secret-0123456789"
READ_TOKEN = "integration-read-token-0123456789"  # the query port's, for tests and the CLI


@pytest.fixture(scope="session")
def broker(tmp_path_factory, pytestconfig) -> Iterator[EmbeddedBroker]:
    folder = tmp_path_factory.mktemp("broker")
    with EmbeddedBroker(port=0, data_dir=folder / "data", log_path=folder / "kafka.log") as kafka:
        terminal = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        line = f"Kafka {kafka_version()} on {kafka.bootstrap}: ready in {kafka.started_in_s:.1f}s"
        if terminal is not None:  # shown however pytest captures output
            terminal.write_line(f"\n{line}")
        yield kafka


@pytest.fixture(scope="session")
def chdb_client(tmp_path_factory):
    """The one chDB engine this test process may open (chDB allows one path per process)."""
    path = tmp_path_factory.mktemp("chdb") / "engine"
    return clickhouse_connect.get_client(dsn=f"chdb://{path}")


@pytest.fixture
def database(chdb_client) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    chdb_client.command(f"DROP DATABASE IF EXISTS {name}")


@dataclass
class Env:
    """PULSE_* settings shared by the processes of one test."""

    values: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def child(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        env.update(self.values)
        env.update(extra)
        env["PYTHONUNBUFFERED"] = "1"
        return env


@pytest.fixture
def pulse_env(broker, tmp_path, monkeypatch) -> Env:
    tag = uuid.uuid4().hex[:8]
    values = {
        "PULSE_KAFKA_BOOTSTRAP": broker.bootstrap,
        "PULSE_KAFKA_SESSION_TIMEOUT_S": "6",  # a SIGKILLed member leaves the group sooner
        "PULSE_PARTITIONS": "4",
        "PULSE_TOPIC_RAW": f"raw-{tag}",
        "PULSE_TOPIC_ENRICHED": f"enriched-{tag}",
        "PULSE_TOPIC_COUNTS": f"counts-{tag}",
        "PULSE_TOPIC_DLQ": f"dlq-{tag}",
        "PULSE_TOPIC_CATALOG": f"plugins-{tag}",
        "PULSE_TOPIC_PEOPLE": f"people-{tag}",
        "PULSE_TOPIC_GROUPS": f"groups-{tag}",
        "PULSE_TOPIC_ERASURES": f"erasures-{tag}",
        "PULSE_APP_ID": f"streams-{tag}",
        "PULSE_GROUP_PREFIX": f"sink-{tag}",
        "PULSE_USER_ID_SECRET": SECRET,
        "PULSE_DATA_DIR": str(tmp_path / "streams"),
        "PULSE_WEB_PORT": str(free_port()),
        "PULSE_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "PULSE_QUERY_PORT": (query_port := str(free_port())),
        "PULSE_QUERY_URL": f"http://127.0.0.1:{query_port}",
        "PULSE_QUERY_READ_TOKENS": f"tests={READ_TOKEN}",
        "PULSE_QUERY_TOKEN": READ_TOKEN,
        "PULSE_BATCH_AGE_S": "0.2",
        "PULSE_METRICS_PORT": str(free_port()),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return Env(values)


class Processes:
    """Pulse processes started by a test; all are stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, env: Env, logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, **extra_env: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=REPO,
            env=self.env.child(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs[name] = proc
        return proc

    def stop(self, name: str, timeout_s: float = 30.0) -> int:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def report(self, lines: int = 400) -> None:
        """After a failure: every live faust worker's task stacks (mode's Worker prints them on
        SIGUSR1), then each log's tail, so a stall in CI can be read from the test report."""
        workers = [
            proc
            for proc in self.procs.values()
            if proc.poll() is None and proc.args[2:4] == ["streams", "worker"]
        ]
        for proc in workers:
            proc.send_signal(signal.SIGUSR1)
        if workers:
            time.sleep(2)
        for name in self.procs:
            tail = self.log(name).splitlines()[-lines:]
            print(f"----- {name}.log (last {len(tail)} lines) -----", *tail, sep="\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def processes(pulse_env, tmp_path, request) -> Iterator[Processes]:
    procs = Processes(pulse_env, tmp_path)
    yield procs
    if request.node.stash.get(CALL_FAILED, False):
        procs.report()
    procs.stop_all()


# Timeouts are hang guards, not speed assertions: a slower machine only waits longer.
PATIENCE = float(os.environ.get("PULSE_TEST_PATIENCE", "3"))


def wait_for(
    condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.25
) -> object:
    """Poll until ``condition()`` is truthy; fail with ``what`` and the last value after
    ``timeout_s`` times ``PULSE_TEST_PATIENCE`` (3 by default)."""
    timeout_s *= PATIENCE
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")
