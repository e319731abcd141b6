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
        self.query_port = free_port()
        self.admin_token = secrets.token_hex(16)
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PULSE_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "PULSE_PARTITIONS": str(self.partitions),
            "PULSE_REPLICATION_FACTOR": str(min(self.brokers, 3)),
            "PULSE_KAFKA_SESSION_TIMEOUT_S": "6",
            "PULSE_USER_ID_SECRET": secrets.token_hex(32),
            "PULSE_CLICKHOUSE_URL": f"chdb://{self.data / 'clickhouse'}",
            "PULSE_QUERY_PORT": str(self.query_port),
            "PULSE_QUERY_URL": f"http://127.0.0.1:{self.query_port}",
            "PULSE_QUERY_ADMIN_TOKEN": self.admin_token,
            "PULSE_CONSUMERS": "2",
            "PULSE_MAX_MESSAGE_BYTES": "262144",
        }
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def add(self, name: str, args: list[str], ready_url: str | None = None, **env: str) -> Member:
        member = Member(name, args, {**self.env, **env}, self.data / f"{name}.log", ready_url)
        self.members[name] = member
        return member

    def start(self, name: str) -> None:
        m = self.members[name]
        m.starts += 1
        with m.log.open("ab") as log:
            log.write(f"\n=== start {m.starts} at {time.time():.3f}\n".encode())
            m.proc = subprocess.Popen(
                [sys.executable, *m.args],
                env=m.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout_s: float = 60) -> None:
        m = self.members[name]
        if m.proc is not None:
            m.expected.add(m.proc.pid)
        if m.proc and m.proc.poll() is None:
            os.killpg(m.proc.pid, sig)
            try:
                m.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(m.proc.pid, signal.SIGKILL)
                m.proc.wait(10)

    def boot(self) -> None:
        """Broker, topics and catalog, then the workers and the sink; returns when all are ready."""
        self.kafka.start()
        settings = KafkaSettings(kafka_bootstrap=self.bootstrap, partitions=self.partitions)
        ensure_topics(wait_for_broker(self.bootstrap), pulse_topics(settings), self.partitions,
                      min(self.brokers, 3))  # fmt: skip
        catalog = subprocess.run(
            [sys.executable, "-m", "streams", "catalog", "sync", str(CATALOG)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if catalog.returncode != 0:
            raise RuntimeError(f"catalog sync failed: {catalog.stderr[-2000:]}")
        for name in ("worker-a", "worker-b"):
            port = free_port()
            self.add(
                name,
                ["-m", "streams", "worker"],
                f"http://127.0.0.1:{port}/readyz",
                PULSE_WEB_PORT=str(port),
                PULSE_DATA_DIR=str(self.data / name),
            )
            self.start(name)
        metrics_port = free_port()
        self.add(
            "sink",
            ["-m", "sinks", "run"],
            f"http://127.0.0.1:{metrics_port}/readyz",
            PULSE_METRICS_PORT=str(metrics_port),
        )
        self.start("sink")
        self._watcher.start()
        for name in ("worker-a", "worker-b", "sink"):
            self.wait_ready(name)

    def wait_ready(self, name: str, timeout_s: float = 180) -> float:
        """Seconds until ``name`` answers ready."""
        started = time.monotonic()
        url = self.members[name].ready_url
        while time.monotonic() - started < timeout_s:
            crashed = [c for c in self.crashes if c.name == name]
            if crashed:
                raise RuntimeError(f"{name} crashed:\n{crashed[0].log_tail}")
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    if resp.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {timeout_s}s:\n{self._tail(name)}")

    def _watch(self) -> None:
        while not self._stop.is_set():
            for m in list(self.members.values()):
                proc = m.proc  # one process, even if a restart replaces it meanwhile
                if proc is not None and proc.poll() is not None and proc.pid not in m.expected:
                    m.expected.add(proc.pid)  # recorded once
                    self.crashes.append(Crash(m.name, proc.returncode, self._tail(m.name)))
            self._stop.wait(0.2)

    def _tail(self, name: str, size: int = 4000) -> str:
        text = self.members[name].log.read_bytes()[-size:]
        return text.decode("utf-8", "replace")

    def shutdown(self) -> None:
        self._stop.set()
        for name in reversed(list(self.members)):
            self.kill(name, signal.SIGTERM, timeout_s=30)
        self.kafka.stop()

    def log_errors(self, name: str) -> list[str]:
        """Lines of a member's log that report an unhandled error."""
        text = self.members[name].log.read_text("utf-8", "replace")
        return [line for line in text.splitlines() if "Traceback" in line or "crashed" in line]
