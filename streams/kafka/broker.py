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
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from streams.errors import BrokerError
from streams.kafka import dist as kafka_dist
from streams.kafka.node import Node, render_config


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
        own_session: bool = False,
    ):
        self.host, self.brokers, self.log_path, self.heap_mb = host, brokers, log_path, heap_mb
        self._own_session = own_session  # the JVMs leave this process's group (Node.launch)
        self._temp = None if data_dir else tempfile.mkdtemp(prefix="pulse-kafka-")
        self.data_dir = Path(data_dir or self._temp)
        self._fixed_port = port or None  # 0: any free port; further nodes always take free ones
        ports = [port or free_port(host)] + [free_port(host) for _ in range(brokers - 1)]
        self.nodes = [
            Node(i + 1, ports[i], free_port(host), self.data_dir / f"node-{i + 1}")
            for i in range(brokers)
        ]
        self._logs = [_node_log(log_path, brokers, self.data_dir, n.node_id) for n in self.nodes]
        self.started_in_s: float | None = None

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{n.port}" for n in self.nodes)

    def start(self, timeout_s: float = 120.0) -> EmbeddedBroker:
        started = time.monotonic()
        java, libs = _java(), kafka_dist.ensure_installed()
        _check_ports(self.host, [self.nodes[0].port] if self._fixed_port else [])
        cluster_id = _cluster_id(self.data_dir)
        try:
            _picking_taken_ports_again(lambda: self._start_nodes(java, libs, cluster_id, timeout_s))
        except BrokerError:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - started
        return self

    def _start_nodes(self, java: str, libs: Path, cluster_id: str, timeout_s: float) -> None:
        for node in self.nodes:
            config = _write_config(self.data_dir, self.host, node, self.nodes)
            node.format(java, libs, config, cluster_id)
        for index in range(len(self.nodes)):
            self.start_node(index)
        try:
            self.wait_ready(timeout_s)
        except BrokerError as error:
            _raise_if_ports_taken(self.host, self.nodes, bool(self._fixed_port), error)
            raise

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until the cluster's metadata lists every node as a live broker."""
        _wait_for_brokers(self.bootstrap, self.nodes, timeout_s, f" (log: {self._logs[0]})")

    def start_node(self, index: int) -> None:
        node = self.nodes[index]
        libs = kafka_dist.ensure_installed()
        config = _write_config(self.data_dir, self.host, node, self.nodes)
        node.launch(_java(), libs, config, self._logs[index], self.heap_mb, self._own_session)

    def stop(self, grace_s: float = 30.0) -> None:
        for node in self.nodes:  # all at once: a quorum stops faster than node by node
            if node.running:
                node.proc.terminate()  # type: ignore[union-attr]
        for node in self.nodes:
            node.stop(grace_s)
        if self._temp:
            shutil.rmtree(self._temp, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _node_log(log_path: Path | None, brokers: int, data_dir: Path, node_id: int) -> Path:
    """A node's log: in the data directory, or ``log_path`` (numbered when there are several)."""
    if log_path is None:
        return data_dir / f"node-{node_id}.log"
    if brokers == 1:
        return log_path
    return log_path.with_name(f"{log_path.stem}-{node_id}{log_path.suffix}")


def _wait_for_brokers(bootstrap: str, nodes: list[Node], timeout_s: float, hint: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for node in nodes:
            if node.proc is not None and node.proc.poll() is not None:
                code = node.proc.returncode
                raise BrokerError(f"Kafka node {node.node_id} exited with {code} at start{hint}")
        with contextlib.suppress(KafkaException):
            if len(admin.list_topics(timeout=2).brokers) >= len(nodes):
                return
        time.sleep(0.2)
    raise BrokerError(f"Kafka on {bootstrap} was not ready in {timeout_s:.0f}s{hint}")


def _cluster_id(data_dir: Path) -> str:
    """The cluster's id, made once and kept with its data: every node is formatted with it."""
    path = data_dir / "cluster-id"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode())
    return path.read_text().strip()


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("no Java on PATH: Kafka needs Java 17+ (`make kafka` installs it)")
    return java


def _write_config(data_dir: Path, host: str, node: Node, nodes: list[Node]) -> Path:
    node.log_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"node-{node.node_id}.properties"
    path.write_text(render_config(host, node, nodes))
    return path


def _picking_taken_ports_again(launch: Callable[[], None]) -> None:
    """``launch()``, again while it fails on ports the broker picked: another process can take
    one between the pick and the JVM's bind
    (test_a_port_taken_after_it_was_picked_is_picked_again)."""
    for attempt in Retrying(retry=_PORT_TAKEN, stop=stop_after_attempt(4), reraise=True):
        with attempt:
            launch()


def _raise_if_ports_taken(host: str, nodes: list[Node], keep_first: bool, error: Exception) -> None:
    """After a failed start: stop the nodes and raise ``_PortTaken`` if another process holds
    ports the broker chose, each replaced (the first client port stays if it was asked for)."""
    taken = []
    for index, node in enumerate(nodes):
        if _port_taken(host, node.controller_port):
            taken.append(node.controller_port)
            node.controller_port = free_port(host)
        if (index or not keep_first) and _port_taken(host, node.port):
            taken.append(node.port)
            node.port = free_port(host)
    if taken:
        for node in nodes:
            node.stop()
        raise _PortTaken(f"{error}; ports {taken} were taken, picked others") from error


def _check_ports(host: str, ports: list[int]) -> None:
    for port in ports:
        if _port_taken(host, port):
            raise BrokerError(f"port {host}:{port} is in use")


def _port_taken(host: str, port: int) -> bool:
    """Whether a bind as Kafka does it (SO_REUSEADDR, as the JVM sets) would fail."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class _PortTaken(BrokerError):
    """A node could not bind a port this broker had picked: pick again and relaunch."""


_PORT_TAKEN = retry_if_exception_type(_PortTaken)


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, and not one this process handed out before (each is for one use)."""
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out or len(_handed_out) > 10_000:
            _handed_out.add(port)
            return port
