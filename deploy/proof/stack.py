"""The proof's processes: broker, two streams workers and the sink, each killable and restartable,
with every exit that the proof did not cause recorded as a crash.

chDB locks its path to one process, so "two sinks" are two consumer-group members per table in
the one process that owns the engine (``PULSE_CONSUMERS=2``); killing the sink kills both.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from streams.kafka.broker import EmbeddedBroker, free_port
from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings

CATALOG = Path(__file__).parents[1] / "catalog" / "plugins.yaml"
# (name, command, the setting of its ready page's port): two streams workers and the sink
_MEMBERS = (
    ("worker-a", ["-m", "streams", "worker"], "PULSE_WEB_PORT"),
    ("worker-b", ["-m", "streams", "worker"], "PULSE_WEB_PORT"),
    ("sink", ["-m", "sinks", "run"], "PULSE_METRICS_PORT"),
)


@dataclass
class Crash:
    name: str
    returncode: int
    log_tail: str


@dataclass
class Member:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    ready_url: str | None = None
    proc: subprocess.Popen | None = None
    expected: set[int] = field(default_factory=set)  # pids whose exit the proof caused
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n=== start {self.starts} at {time.time():.3f}\n".encode())
            self.proc = subprocess.Popen(
                [sys.executable, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, sig: int = signal.SIGKILL, timeout_s: float = 60) -> None:
        """Signal the process group and wait; an exit the proof caused is not a crash."""
        if self.proc is not None:
            self.expected.add(self.proc.pid)
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def tail(self, size: int = 4000) -> str:
        return self.log.read_bytes()[-size:].decode("utf-8", "replace")

    def errors(self) -> list[str]:
        """Lines of the log that report an unhandled error."""
        text = self.log.read_text("utf-8", "replace")
        return [line for line in text.splitlines() if "Traceback" in line or "crashed" in line]


class CrashWatch:
    """Records every exit of a member that the proof did not cause, once, and starts it again
    (as a supervisor would: a worker that stops itself on a stalled flush relies on that)."""

    def __init__(self, members: dict[str, Member], crashes: list[Crash]) -> None:
        self._members, self._crashes = members, crashes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for m in list(self._members.values()):
                proc = m.proc  # one process, even if a restart replaces it meanwhile
                if proc is not None and proc.poll() is not None and proc.pid not in m.expected:
                    m.expected.add(proc.pid)  # recorded once
                    self._crashes.append(Crash(m.name, proc.returncode, m.tail()))
                    if m.proc is proc:  # not restarted by the proof meanwhile
                        m.start()
            self._stop.wait(0.2)


@dataclass
class Stack:
    data: Path
    partitions: int = 4
    brokers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    crashes: list[Crash] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.kafka = EmbeddedBroker(
            port=free_port(),
            brokers=self.brokers,
            data_dir=self.data / "kafka",
            log_path=self.data / "broker.log",
        )
        self.query_port, self.admin_token = free_port(), secrets.token_hex(16)
        self.env = _environment(self.kafka.bootstrap, self.partitions, self.brokers,
                                self.data, self.query_port, self.admin_token)  # fmt: skip
        self._watcher = CrashWatch(self.members, self.crashes)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def add(self, name: str, args: list[str], ready_url: str | None = None, **env: str) -> Member:
        log = self.data / f"{name}.log"
        member = self.members[name] = Member(name, args, {**self.env, **env}, log, ready_url)
        return member

    def start(self, name: str) -> None:
        self.members[name].start()

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout_s: float = 60) -> None:
        self.members[name].kill(sig, timeout_s)

    def boot(self) -> None:
        """Broker, topics and catalog, then the workers and the sink; returns when all are ready."""
        self.kafka.start()
        settings = KafkaSettings(kafka_bootstrap=self.bootstrap, partitions=self.partitions)
        ensure_topics(wait_for_broker(self.bootstrap), pulse_topics(settings), self.partitions,
                      min(self.brokers, 3))  # fmt: skip
        _sync_catalog(self.env)
        for name, args, port_setting in _MEMBERS:
            port = free_port()
            env = {port_setting: str(port)}
            if name != "sink":
                env["PULSE_DATA_DIR"] = str(self.data / name)
            self.add(name, args, f"http://127.0.0.1:{port}/readyz", **env)
            self.start(name)
        self._watcher.start()
        for name, _, _ in _MEMBERS:
            self.wait_ready(name)

    def wait_ready(self, name: str, timeout_s: float = 180) -> float:
        """Seconds until ``name`` answers ready."""
        started = time.monotonic()
        url = self.members[name].ready_url
        while time.monotonic() - started < timeout_s:
            crashed = [c for c in self.crashes if c.name == name]
            if len(crashed) > 2:  # restarted each time, and crashing again
                raise RuntimeError(f"{name} keeps crashing:\n{crashed[-1].log_tail}")
            if _answers_ready(url):
                return time.monotonic() - started
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {timeout_s}s:\n{self.members[name].tail()}")

    def shutdown(self) -> None:
        self._watcher.stop()
        for name in reversed(list(self.members)):
            self.kill(name, signal.SIGTERM, timeout_s=30)
        self.kafka.stop()

    def log_errors(self, name: str) -> list[str]:
        """Lines of a member's log that report an unhandled error."""
        return self.members[name].errors()


def _environment(
    bootstrap: str, partitions: int, brokers: int, data: Path, query_port: int, admin: str
) -> dict[str, str]:
    """What every member runs with: the stack's Kafka, its chDB path, the proof's limits."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PULSE_KAFKA_BOOTSTRAP": bootstrap,
        "PULSE_PARTITIONS": str(partitions),
        "PULSE_REPLICATION_FACTOR": str(min(brokers, 3)),
        "PULSE_KAFKA_SESSION_TIMEOUT_S": "6",
        "PULSE_USER_ID_SECRET": secrets.token_hex(32),
        "PULSE_CLICKHOUSE_URL": f"chdb://{data / 'clickhouse'}",
        "PULSE_QUERY_PORT": str(query_port),
        "PULSE_QUERY_URL": f"http://127.0.0.1:{query_port}",
        "PULSE_QUERY_ADMIN_TOKEN": admin,
        "PULSE_CONSUMERS": "2",
        "PULSE_MAX_MESSAGE_BYTES": "262144",
    }


def _sync_catalog(env: dict[str, str]) -> None:
    catalog = subprocess.run(
        [sys.executable, "-m", "streams", "catalog", "sync", str(CATALOG)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if catalog.returncode != 0:
        raise RuntimeError(f"catalog sync failed: {catalog.stderr[-2000:]}")


def _answers_ready(url: str | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False
