"""Apache Kafka in KRaft mode on loopback, for local runs, tests, the proof and the benches.

Each node is one JVM acting as broker and controller. One node by default; ``brokers=3`` runs
a three-node quorum with replicated internal topics. Storage is formatted on first start and
kept in ``data_dir``, so a node (or the whole cluster) restarts with its data. The JVMs are
children of this process and die with it (``PR_SET_PDEATHSIG``), so an interrupted test run or
a killed supervisor leaves none behind. Production points ``PULSE_KAFKA_BOOTSTRAP`` at its own
cluster instead.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streams import kafka_dist
from streams.errors import BrokerError

JVM_OPTS = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]


@dataclass
class Node:
    node_id: int
    port: int
    controller_port: int
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class EmbeddedBroker:
    """Kafka nodes on loopback ports. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9092,
        *,
        brokers: int = 1,
        data_dir: Path | None = None,
        log_path: Path | None = None,
        heap_mb: int = 768,
    ):
        self.host = host
        self.brokers = brokers
        self.log_path = log_path
        self.heap_mb = heap_mb
        self._temp = None if data_dir else tempfile.mkdtemp(prefix="pulse-kafka-")
        self.data_dir = Path(data_dir or self._temp)
        # Port 0: any free port. Further nodes always take free ports.
        ports = [port or free_port(host)] + [free_port(host) for _ in range(brokers - 1)]
        self.nodes = [
            Node(i + 1, ports[i], free_port(host), self.data_dir / f"node-{i + 1}")
            for i in range(brokers)
        ]
        self.started_in_s: float | None = None

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{n.port}" for n in self.nodes)

    def start(self, timeout_s: float = 120.0) -> EmbeddedBroker:
        started = time.monotonic()
        java = _java()
        libs = kafka_dist.ensure_installed()
        for node in self.nodes:
            for p in (node.port, node.controller_port):
                if _port_open(self.host, p):
                    raise BrokerError(f"port {self.host}:{p} (node {node.node_id}) is in use")
        cluster_id = self._cluster_id()
        for node in self.nodes:
            self._format(java, libs, node, cluster_id)
        for node in self.nodes:
            self._launch(java, libs, node)
        try:
            self.wait_ready(timeout_s)
        except BrokerError:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - started
        return self

    def wait_ready(self, timeout_s: float = 120.0, nodes: int | None = None) -> None:
        """Until the cluster's metadata lists ``nodes`` (default: all) live brokers."""
        want = nodes or self.brokers
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is not None:
                    raise BrokerError(
                        f"Kafka node {node.node_id} exited with {node.proc.returncode} at start"
                        f"{self._log_hint()}"
                    )
            with contextlib.suppress(KafkaException):
                if len(admin.list_topics(timeout=2).brokers) >= want:
                    return
            time.sleep(0.2)
        raise BrokerError(
            f"Kafka on {self.bootstrap} was not ready in {timeout_s:.0f}s{self._log_hint()}"
        )

    def stop_node(self, index: int, grace_s: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown: leadership moves first), then SIGKILL."""
        proc = self.nodes[index].proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill_node(self, index: int) -> None:
        proc = self.nodes[index].proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def start_node(self, index: int) -> None:
        self._launch(_java(), kafka_dist.ensure_installed(), self.nodes[index])

    def wait(self) -> int:
        """Until any node exits; its return code."""
        while True:
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is not None:
                    return node.proc.returncode
            time.sleep(0.2)

    def stop(self, grace_s: float = 30.0) -> None:
        for node in self.nodes:  # all at once: a quorum stops faster than node by node
            if node.running:
                node.proc.terminate()  # type: ignore[union-attr]
        for index in range(len(self.nodes)):
            self.stop_node(index, grace_s)
        if self._temp:
            shutil.rmtree(self._temp, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _cluster_id(self) -> str:
        path = self.data_dir / "cluster-id"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode())
        return path.read_text().strip()

    def _format(self, java: str, libs: Path, node: Node, cluster_id: str) -> None:
        config = self._write_config(node)
        if (node.log_dir / "meta.properties").exists():
            return
        cmd = [java, "-cp", kafka_dist.classpath(libs), *self._log4j(), "kafka.tools.StorageTool"]
        # "--cluster-id=": a base64 id may start with "-", which the tool would take as an option
        cmd += ["format", f"--cluster-id={cluster_id}", "-c", str(config)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed: {done.stdout}{done.stderr}")

    def _write_config(self, node: Node) -> Path:
        node.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / f"node-{node.node_id}.properties"
        path.write_text(render_config(self.host, node, self.nodes))
        return path

    def _launch(self, java: str, libs: Path, node: Node) -> None:
        config = self._write_config(node)
        log = open(self._node_log(node), "ab")  # noqa: SIM115 - the child owns it
        cmd = [java, f"-Xmx{self.heap_mb}m", "-Xms128m", *JVM_OPTS, *self._log4j()]
        cmd += ["-cp", kafka_dist.classpath(libs), "kafka.Kafka", str(config)]
        # The death signal follows the *thread* that started the child: a node restarted from
        # a short-lived thread would die with it, so only the main thread's children get it.
        main = threading.current_thread() is threading.main_thread()
        node.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent if main else None
        )
        log.close()

    def _node_log(self, node: Node) -> Path:
        if self.log_path is None:
            return self.data_dir / f"node-{node.node_id}.log"
        if self.brokers == 1:
            return self.log_path
        return self.log_path.with_name(f"{self.log_path.stem}-{node.node_id}{self.log_path.suffix}")

    def _log4j(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={kafka_dist.LOG4J_CONFIG}"]

    def _log_hint(self) -> str:
        return f" (log: {self._node_log(self.nodes[0])})"


def render_config(host: str, node: Node, nodes: list[Node]) -> str:
    """server.properties of one combined broker+controller node, tuned for one machine."""
    replicas = min(len(nodes), 3)
    voters = ",".join(f"{n.node_id}@{host}:{n.controller_port}" for n in nodes)
    settings = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{host}:{node.port},CONTROLLER://{host}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": node.log_dir,
        # Topics are created on purpose (python -m streams topics, faust's own), never by a typo.
        "auto.create.topics.enable": "false",
        "default.replication.factor": replicas,
        "min.insync.replicas": max(replicas - 1, 1),
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": 8,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": max(replicas - 1, 1),
        "transaction.state.log.num.partitions": 8,
        # Local runs start many consumer groups: no 3 s wait for more members on the first join.
        "group.initial.rebalance.delay.ms": 0,
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
        "log.retention.hours": 168,
        "log.segment.bytes": 256 * 1024 * 1024,
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("no Java on PATH: Kafka needs Java 17+ (`make kafka` installs it)")
    return java


def _die_with_parent() -> None:
    # Linux: the JVM gets SIGTERM when the process that started it dies, however it died.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
