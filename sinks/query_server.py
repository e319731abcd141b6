"""Read-only SQL and the dashboard over HTTP, for the process that owns an embedded chDB (and,
standalone, in front of a ClickHouse server).

chDB locks its path to one process, so analysts' queries must be served by the sink that
writes. This speaks a subset of ClickHouse's HTTP interface: ``GET /ping``, and ``GET /?query=``
or ``POST /`` (query in the body) with optional ``default_format`` and ``param_<name>``
values; errors come back as text with ``X-ClickHouse-Exception-Code``. Only reading statements
run (see ``readonly``), except for a request bearing the admin token when one is configured:
in embedded mode this process is the only way to reach chDB for maintenance (an erasure's
``ALTER TABLE ... DELETE``, ``OPTIMIZE``, renames). ``/dashboard`` is the analysts' page.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from clickhouse_connect.driver.client import Client
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from sinks import dashboard, questions
from sinks.clickhouse import call
from sinks.errors import ClickHouseError, ClickHouseRejectedError
from sinks.http_service import HttpService
from sinks.readonly import run_readonly

log = logging.getLogger("pulse.sinks.query")
MAX_QUERY_BYTES = 256 * 1024
HTML = "text/html; charset=UTF-8"
ENDPOINTS = frozenset({"/", "/ping", "/healthz", "/readyz", "/metrics", "/dashboard",
                       "/static/plotly.min.js"})  # fmt: skip
JS = "text/javascript; charset=UTF-8"


def asker(client: Client, database: str) -> dashboard.Ask:
    """Answers saved questions through the read-only path."""

    def ask(name: str, kw: dict) -> list[dict]:
        sql, params = questions.render(questions.get(name), database, **kw)
        text = run_readonly(client, sql, "JSONEachRow", params).decode()
        return [json.loads(line) for line in text.splitlines() if line]

    return ask


class QueryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "pulse_query_requests_total",
            "HTTP requests to the query server and dashboard",
            ["endpoint", "code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "pulse_query_request_seconds",
            "Time to answer a query or render the dashboard",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )


def _handler(
    client: Client, database: str, metrics: QueryMetrics, admin_token: str | None
) -> type[BaseHTTPRequestHandler]:
    ask = asker(client, database)
    admin = f"Bearer {admin_token}".encode() if admin_token else None

    class Handler(BaseHTTPRequestHandler):
        server_version = "pulse-query"

        def log_message(self, fmt: str, *args: object) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

        def do_GET(self) -> None:
            self._started = time.perf_counter()
            url = urlsplit(self.path)
            params = parse_qs(url.query, keep_blank_values=True)  # a blank parameter is a value
            if url.path in ("/ping", "/healthz"):
                self._reply(HTTPStatus.OK, b"Ok.\n")
            elif url.path == "/readyz":
                self._ready()
            elif url.path == "/metrics":
                body = generate_latest(metrics.registry)
                self._reply(HTTPStatus.OK, body, content_type=CONTENT_TYPE_LATEST)
            elif url.path == "/dashboard":
                self._dashboard(params.get("since", ["24h"])[0])
            elif url.path == "/static/plotly.min.js":
                self._reply(HTTPStatus.OK, dashboard.plotly_js(), content_type=JS, cache=True)
            elif url.path == "/" and "query" not in params:
                self._reply(HTTPStatus.OK, b"Ok.\n")  # as ClickHouse answers a bare GET /
            else:
                self._query(params.get("query", [""])[0], params)

        def _ready(self) -> None:
            try:  # ready when ClickHouse answers
                call("checking ClickHouse", client.command, "SELECT 1")
            except ClickHouseError as exc:
                self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc}\n".encode())
                return
            self._reply(HTTPStatus.OK, b"ready\n")

        def _dashboard(self, since: str) -> None:
            try:
                page = dashboard.render(ask, since)
            except questions.QuestionError as exc:
                self._reply(HTTPStatus.BAD_REQUEST, f"{exc}\n".encode())
                return
            except ClickHouseError as exc:
                self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc}\n".encode())
                return
            self._reply(HTTPStatus.OK, page.encode(), content_type=HTML)

        def do_POST(self) -> None:
            self._started = time.perf_counter()
            url = urlsplit(self.path)
            params = parse_qs(url.query, keep_blank_values=True)  # a blank parameter is a value
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_QUERY_BYTES:
                self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"query too large\n")
                return
            body = self.rfile.read(length).decode("utf-8", "replace")
            prefix = params.get("query", [""])[0]
            self._query(f"{prefix} {body}".strip(), params)

        def _query(self, sql: str, params: dict[str, list[str]]) -> None:
            if not sql.strip():
                self._reply(HTTPStatus.BAD_REQUEST, b"empty query\n")
                return
            fmt = params.get("default_format", ["TabSeparated"])[0]
            # Query parameters, as ClickHouse's HTTP interface takes them: param_<name>=value.
            values = {k[6:]: v[0] for k, v in params.items() if k.startswith("param_") and v}
            given = self.headers.get("Authorization", "").encode()
            try:
                try:
                    body = run_readonly(client, sql, fmt, values)
                except ClickHouseRejectedError as exc:
                    if exc.name != "READONLY" or not (admin and hmac.compare_digest(given, admin)):
                        raise
                    call("admin statement", client.command, sql, parameters=values or None)
                    body = b""
            except ClickHouseError as exc:
                headers = {"X-ClickHouse-Exception-Code": str(exc.code or 0)}
                self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, f"{exc}\n".encode(), headers)
                return
            self._reply(HTTPStatus.OK, body, {"X-ClickHouse-Format": fmt})

        def _reply(
            self,
            status: int,
            body: bytes,
            headers: dict[str, str] | None = None,
            content_type: str = "text/plain; charset=UTF-8",
            cache: bool = False,
        ) -> None:
            endpoint = urlsplit(self.path).path
            endpoint = endpoint if endpoint in ENDPOINTS else "/"
            metrics.requests.labels(endpoint, str(int(status))).inc()
            metrics.seconds.labels(endpoint).observe(time.perf_counter() - self._started)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if cache:
                self.send_header("Cache-Control", "public, max-age=86400")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    return Handler


class QueryServer(HttpService):
    def __init__(
        self,
        client: Client,
        host: str,
        port: int,
        database: str = "pulse",
        registry: CollectorRegistry | None = None,
        admin_token: str | None = None,
    ) -> None:
        """``registry``: where the request metrics go (the process's; else one of its own).
        ``admin_token``: requests bearing it may run any statement (None: reading only)."""
        self.metrics = QueryMetrics(registry or CollectorRegistry())
        handler = _handler(client, database, self.metrics, admin_token)
        super().__init__(host, port, handler)
