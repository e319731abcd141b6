"""Read-only SQL and the dashboard over HTTP, for the process that owns an embedded chDB (and,
standalone, in front of a ClickHouse server).

chDB locks its path to one process, so analysts' queries must be served by the sink that
writes. This speaks a subset of ClickHouse's HTTP interface: ``GET /ping``, and ``GET /?query=``
or ``POST /`` (query in the body) with optional ``default_format`` and ``param_<name>``
values; errors come back as text with ``X-ClickHouse-Exception-Code``, refusals also with
``X-Pulse-Refused: <reason>``. Every query goes through ``guard``, on a client of its own from
a bounded pool (so it never waits on the sink's inserts, and beyond the pool the answer is 429),
and is killed when its client disconnects. A request bearing the admin token (when one is
configured) may run any statement: in embedded mode this process is the only way to reach chDB
for maintenance (an erasure's ``ALTER TABLE ... DELETE``, ``OPTIMIZE``, renames).
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry

from sinks.clickhouse import call
from sinks.errors import ClickHouseError, ClickHouseUnavailableError, QueryRefusedError
from sinks.http_service import HttpService
from sinks.query import dashboard, questions
from sinks.query.guard import Guard, cancel, output_format
from sinks.query.limits import QueryLimits
from sinks.query.query_metrics import QueryMetrics
from sinks.query.watch import run_watched

log = logging.getLogger("pulse.sinks.query")
MAX_QUERY_BYTES = 256 * 1024
HTML = "text/html; charset=UTF-8"
JS = "text/javascript; charset=UTF-8"
ENDPOINTS = frozenset({"/", "/ping", "/healthz", "/readyz", "/metrics", "/dashboard",
                       "/static/plotly.min.js"})  # fmt: skip


def asker(guard: Guard, client: Client) -> dashboard.Ask:
    """Answers saved questions through the guarded path, on ``client``."""

    def ask(name: str, kw: dict) -> list[dict]:
        sql, params = questions.render(questions.get(name), guard.database, **kw)
        text = guard.run(client, sql, "JSONEachRow", params).decode()
        return [json.loads(line) for line in text.splitlines() if line]

    return ask


class Slots:
    """At most ``size`` analyst queries at once, each on a client of its own; one more client
    kills queries whose askers went away."""

    def __init__(self, connect: Callable[[], Client], size: int) -> None:
        self._free: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for _ in range(size):
            self._free.put(connect())
        self.control = connect()
        self.executor = ThreadPoolExecutor(size, thread_name_prefix="pulse-query")

    @contextmanager
    def take(self) -> Iterator[Client | None]:
        try:
            client = self._free.get_nowait()
        except queue.Empty:
            yield None
            return
        try:
            yield client
        finally:
            self._free.put(client)


class _Service:
    """What one request needs: the guard, the pool, the admin token, the metrics."""

    def __init__(self, guard: Guard, slots: Slots, metrics: QueryMetrics, admin: str | None):
        self.guard = guard
        self.slots = slots
        self.metrics = metrics
        self._admin = f"Bearer {admin}".encode() if admin else None

    def is_admin(self, authorization: str) -> bool:
        return bool(self._admin and hmac.compare_digest(authorization.encode(), self._admin))

    def run(
        self, client: Client, sql: str, fmt: str, values: dict, admin: bool, markers: list[str]
    ) -> bytes:
        """Guarded and limited, or (admin) as written; the guarded query's marker goes to
        ``markers``. Raises QueryRefusedError or ClickHouseError."""
        if admin:
            return self._as_admin(client, sql, fmt, values)
        prepared = self.guard.prepare(client, sql, values)
        markers.append(prepared.marker)
        return self.guard.run(client, sql, fmt, values, prepared=prepared)

    def _as_admin(self, client: Client, sql: str, fmt: str, values: dict) -> bytes:
        statement, asked = self.guard.normalise(client, sql)
        try:
            self.guard.judge(client, statement, asked, values)
        except QueryRefusedError as exc:
            if exc.reason in ("syntax_error", "bad_parameter"):
                raise
            if exc.reason == "not_reading":
                call("admin statement", client.command, sql, parameters=values or None)
                return b""
        return call("admin query", client.raw_query, statement, parameters=values or None,
                    fmt=output_format(asked or fmt))  # fmt: skip


class _Replying(BaseHTTPRequestHandler):
    """Replies and refusals, each counted in the request metrics."""

    server_version = "pulse-query"
    service: _Service  # set per server by ``_handler``

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def _refuse(self, exc: QueryRefusedError) -> None:
        self.service.metrics.refused.labels(exc.reason).inc()
        headers = {"X-Pulse-Refused": exc.reason,
                   "X-ClickHouse-Exception-Code": str(exc.code or 0)}  # fmt: skip
        if exc.reason == "too_many_queries":
            headers["Retry-After"] = "1"
        self._reply(exc.status, f"{exc}\n".encode(), headers)

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
        self.service.metrics.observe(endpoint, int(status), self._started)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if cache:
            self.send_header("Cache-Control", "public, max-age=86400")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class _Querying(_Replying):
    """SQL in, through the guard on a pooled client, killed when its asker goes away."""

    def _query(self, sql: str, params: dict[str, list[str]]) -> None:
        if not sql.strip():
            self._refuse(QueryRefusedError("empty_query", "empty query", 400, 62, None))
            return
        fmt = params.get("default_format", ["TabSeparated"])[0]
        # Query parameters, as ClickHouse's HTTP interface takes them: param_<name>=value.
        values = {k[6:]: v[0] for k, v in params.items() if k.startswith("param_") and v}
        admin = self.service.is_admin(self.headers.get("Authorization", ""))
        with self.service.slots.take() as client:
            if client is None:
                self._refuse(_busy())
                return
            try:
                body = self._watched(client, sql, fmt, values, admin)
            except QueryRefusedError as exc:
                self._refuse(exc)
                return
            except ClickHouseError as exc:
                status = 503 if isinstance(exc, ClickHouseUnavailableError) else 400
                headers = {"X-ClickHouse-Exception-Code": str(exc.code or 0)}
                self._reply(status, f"{exc}\n".encode(), headers)
                return
        if body is not None:
            self._reply(HTTPStatus.OK, body, {"X-ClickHouse-Format": fmt})

    def _watched(self, client: Client, sql: str, fmt: str, values: dict, admin: bool):
        """The query's answer, or None when the asker went away (the query is killed)."""
        service, markers = self.service, []

        def work() -> bytes:
            return service.run(client, sql, fmt, values, admin, markers)

        def gone() -> None:
            service.metrics.cancelled.inc()
            for marker in markers:
                cancel(service.slots.control, marker)

        with service.metrics.in_flight.track_inprogress():
            return run_watched(service.slots.executor, work, self.connection, gone)


class _Handler(_Querying):
    """The endpoints: ClickHouse's ping and query, health, metrics, the dashboard."""

    def do_GET(self) -> None:
        self._started = time.perf_counter()
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)  # a blank parameter is a value
        metrics = self.service.metrics
        if url.path in ("/ping", "/healthz"):
            self._reply(HTTPStatus.OK, b"Ok.\n")
        elif url.path == "/readyz":
            self._ready()
        elif url.path == "/metrics":
            self._reply(HTTPStatus.OK, metrics.exposition(), content_type=metrics.content_type)
        elif url.path == "/dashboard":
            self._dashboard(params.get("since", ["24h"])[0])
        elif url.path == "/static/plotly.min.js":
            self._reply(HTTPStatus.OK, dashboard.plotly_js(), content_type=JS, cache=True)
        elif url.path == "/" and "query" not in params:
            self._reply(HTTPStatus.OK, b"Ok.\n")  # as ClickHouse answers a bare GET /
        else:
            self._query(params.get("query", [""])[0], params)

    def do_POST(self) -> None:
        self._started = time.perf_counter()
        params = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_QUERY_BYTES:
            self._refuse(QueryRefusedError(
                "query_too_large", f"a query is at most {MAX_QUERY_BYTES} bytes", 413, 62,
                "SYNTAX_ERROR"))  # fmt: skip
            return
        body = self.rfile.read(length).decode("utf-8", "replace")
        prefix = params.get("query", [""])[0]
        self._query(f"{prefix} {body}".strip(), params)

    def _ready(self) -> None:
        try:  # ready when ClickHouse answers
            call("checking ClickHouse", self.service.slots.control.command, "SELECT 1")
        except ClickHouseError as exc:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc}\n".encode())
            return
        self._reply(HTTPStatus.OK, b"ready\n")

    def _dashboard(self, since: str) -> None:
        with self.service.slots.take() as client:
            if client is None:
                self._refuse(_busy())
                return
            try:
                page = dashboard.render(asker(self.service.guard, client), since)
            except questions.QuestionError as exc:
                self._reply(HTTPStatus.BAD_REQUEST, f"{exc}\n".encode())
                return
            except QueryRefusedError as exc:
                self._refuse(exc)
                return
            except ClickHouseError as exc:
                self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc}\n".encode())
                return
        self._reply(HTTPStatus.OK, page.encode(), content_type=HTML)


def _handler(service: _Service) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"service": service})


def _busy() -> QueryRefusedError:
    return QueryRefusedError(
        "too_many_queries", "the query port runs its maximum of queries; retry", 429, 202,
        "TOO_MANY_SIMULTANEOUS_QUERIES",
    )  # fmt: skip


class QueryServer(HttpService):
    def __init__(
        self,
        connect: Callable[[], Client],
        host: str,
        port: int,
        database: str = "pulse",
        registry: CollectorRegistry | None = None,
        admin_token: str | None = None,
        limits: QueryLimits | None = None,
        max_concurrent: int = 4,
    ) -> None:
        """``connect``: makes the pool's clients (``max_concurrent`` of them, and one to kill
        queries with). ``registry``: where the request metrics go (the process's; else one of
        its own). ``admin_token``: requests bearing it may run any statement."""
        self.metrics = QueryMetrics(registry or CollectorRegistry())
        self.slots = Slots(connect, max_concurrent)
        service = _Service(Guard(database, limits), self.slots, self.metrics, admin_token)
        super().__init__(host, port, _handler(service))

    def stop(self) -> None:
        super().stop()
        self.slots.executor.shutdown(wait=False, cancel_futures=True)
