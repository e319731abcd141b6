"""The sink process's operations endpoint: ``/metrics`` (Prometheus), ``/healthz`` (the process
answers) and ``/readyz`` (every sink runs and ClickHouse takes inserts)."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sinks.http_service import HttpService


class OpsServer(HttpService):
    def __init__(
        self, registry: CollectorRegistry, host: str, port: int, ready: Callable[[], bool]
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._reply(HTTPStatus.OK, b"ok\n")
                elif path == "/readyz":
                    ok = ready()
                    status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
                    self._reply(status, b"ready\n" if ok else b"not ready\n")
                else:
                    self._reply(HTTPStatus.NOT_FOUND, b"not found\n")

            def _reply(self, status: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(host, port, Handler)
