"""One KRaft node (broker and controller in one JVM): its settings, storage and process.

``streams.kafka.broker.EmbeddedBroker`` runs one or three of these on loopback.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from streams.errors import BrokerError
from streams.kafka import dist as kafka_dist

JVM_OPTS = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
LOG4J = [f"-Dlog4j2.configurationFile={kafka_dist.LOG4J_CONFIG}"]


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

    def format(self, java: str, libs: Path, config: Path, cluster_id: str) -> None:
        """Format the storage once; a formatted node keeps its data."""
        if (self.log_dir / "meta.properties").exists():
            return
        cmd = [java, "-cp", kafka_dist.classpath(libs), *LOG4J, "kafka.tools.StorageTool"]
        # "--cluster-id=": a base64 id may start with "-", which the tool would take as an option
        cmd += ["format", f"--cluster-id={cluster_id}", "-c", str(config)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed: {done.stdout}{done.stderr}")

    def launch(
        self, java: str, libs: Path, config: Path, log_path: Path, heap_mb: int,
        own_session: bool = False,
    ) -> None:  # fmt: skip
        """``own_session``: out of the starter's process group, so a signal to that group (a
        supervisor stopping it) does not reach the JVM; it still dies with its starter."""
        log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
        cmd = [java, f"-Xmx{heap_mb}m", "-Xms128m", *JVM_OPTS, *LOG4J]
        cmd += ["-cp", kafka_dist.classpath(libs), "kafka.Kafka", str(config)]
        # The death signal follows the *thread* that started the child: a node restarted from
        # a short-lived thread would die with it, so only the main thread's children get it.
        main = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if main else None, start_new_session=own_session,
        )  # fmt: skip
        log.close()

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown: leadership moves first), then SIGKILL."""
        if not self.running:
            return
        self.proc.terminate()  # type: ignore[union-attr]
        try:
            self.proc.wait(grace_s)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.running:
            self.proc.kill()  # type: ignore[union-attr]
            self.proc.wait()  # type: ignore[union-attr]


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


def _die_with_parent() -> None:
    # Linux: the JVM gets SIGTERM when the process that started it dies, however it died.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
