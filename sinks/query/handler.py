"""The query port's requests: ClickHouse's HTTP interface for SQL, the saved questions' JSON
API, the dashboard, and the open operations pages. Everything that reads analytics needs a
credential (``credentials``); writing statements need the admin token."""

from __future__ import annotations

import json
import logging
import time
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sinks.clickhouse import call
from sinks.errors import (
    ClickHouseError,
    ClickHouseUnavailableError,
    QueryRefusedError,
    SinkError,
)
from sinks.query import api, dashboard, questions
from sinks.query.credentials import Caller, session_cookie
from sinks.query.guard import cancel
from sinks.query.watch import run_watched

if TYPE_CHECKING:
    from sinks.query.server import Service

log = logging.getLogger("pulse.sinks.query")
MAX_QUERY_BYTES = 256 * 1024
HTML = "text/html; charset=UTF-8"
JS = "text/javascript; charset=UTF-8"
JSON = "application/json"
ENDPOINTS = frozenset({"/", "/ping", "/healthz", "/readyz", "/metrics", "/dashboard",
                       "/static/plotly.min.js", "/v1/questions", "/v1/questions/*",
                       "/v1/openapi.json", "/v1/erasures", "/v1/erasures/verify"})  # fmt: skip
AUTHENTICATION_FAILED = 516  # ClickHouse's code, for clients of its HTTP interface


class _Replying(BaseHTTPRequestHandler):
    """Replies and refusals, each counted in the request metrics."""

    server_version = "pulse-query"
    service: Service  # set per server by ``handler``

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def _refuse(self, exc: QueryRefusedError, as_json: bool = False) -> None:
        self.service.metrics.refused.labels(exc.reason).inc()
        headers = {"X-Pulse-Refused": exc.reason,
                   "X-ClickHouse-Exception-Code": str(exc.code or 0)}  # fmt: skip
        if exc.reason == "too_many_queries":
            headers["Retry-After"] = "1"
        if exc.reason == "unauthorized":
            headers["WWW-Authenticate"] = 'Bearer realm="pulse"'
        if as_json or exc.reason == "unauthorized":
            detail = str(exc).removesuffix(f" ({exc.reason})")
            self._json(exc.status, {"error": exc.reason, "detail": detail}, headers)
        else:
            self._reply(exc.status, f"{exc}\n".encode(), headers)

    def _problem(self, status: int, error: str, detail: str) -> None:
        self._json(status, {"error": error, "detail": detail})

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._reply(status, json.dumps(body).encode(), headers, content_type=JSON)

    def _reply(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "text/plain; charset=UTF-8",
        cache: bool = False,
    ) -> None:
        self.service.metrics.observe(_endpoint(self.path), int(status), self._started)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if cache:
            self.send_header("Cache-Control", "public, max-age=86400")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class _Authorising(_Replying):
    """Who is asking: a token in the request, or a browser's session cookie."""

    def _caller(self) -> Caller | None:
        """The caller, or None after answering 401 (logged once per client and kind)."""
        authorization = self.headers.get("Authorization", "")
        caller = self.service.credentials.request(authorization, self._cookies())
        if caller is None:
            kind = "a wrong credential" if authorization else "no credential"
            self.service.refused_once(self.client_address[0], kind, _endpoint(self.path))
            self._refuse(_unauthorized())
        return caller

    def _cookies(self) -> dict[str, str]:
        try:
            jar = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    def _login(self, token: str, params: dict[str, list[str]]) -> None:
        """``/dashboard?token=``: a session cookie for a valid token, then the page without it."""
        caller = self.service.credentials.token(token)
        if caller is None:
            self.service.refused_once(self.client_address[0], "a wrong credential", "/dashboard")
            self._refuse(_unauthorized())
            return
        session = self.service.credentials.open_session(caller)
        kept = urlencode({k: v[-1] for k, v in params.items() if k != "token"})
        location = "/dashboard" + (f"?{kept}" if kept else "")
        headers = {"Set-Cookie": session_cookie(session), "Location": location}
        self._reply(HTTPStatus.SEE_OTHER, b"", headers)


class _Querying(_Authorising):
    """SQL in, through the guard on a pooled client, killed when its asker goes away."""

    def _query(self, sql: str, params: dict[str, list[str]]) -> None:
        caller = self._caller()
        if caller is None:
            return
        if not sql.strip():
            self._refuse(QueryRefusedError("empty_query", "empty query", 400, 62, None))
            return
        fmt = params.get("default_format", ["TabSeparated"])[0]
        # Query parameters, as ClickHouse's HTTP interface takes them: param_<name>=value.
        values = {k[6:]: v[0] for k, v in params.items() if k.startswith("param_") and v}
        with self.service.slots.take() as client:
            if client is None:
                self._refuse(_busy())
                return
            try:
                body = self._watched(lambda markers: self.service.run(
                    client, sql, fmt, values, caller.admin, markers))  # fmt: skip
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

    def _watched(self, work: Any) -> bytes | None:
        """``work(markers)``'s answer, or None when the asker went away (its queries, whose
        markers it appended, are killed)."""
        service, markers = self.service, []

        def gone() -> None:
            service.metrics.cancelled.inc()
            for marker in markers:
                cancel(service.slots.control, marker)

        with service.metrics.in_flight.track_inprogress():
            return run_watched(service.slots.executor, lambda: work(markers), self.connection, gone)


class _Answering(_Querying):
    """The saved questions: as JSON or CSV (``/v1/questions``) and as the dashboard."""

    def _questions(self, name: str, params: dict[str, list[str]]) -> None:
        if self._caller() is None:
            return
        if not name:
            self._json(HTTPStatus.OK, api.catalogue())
            return
        service = self.service
        accept = self.headers.get("Accept", "")
        with service.slots.take() as client:
            if client is None:
                self._refuse(_busy(), as_json=True)
                return

            def work(markers: list[str]) -> api.Answer:
                def run(sql: str, values: dict, fmt: str) -> bytes:
                    return service.ask(client, sql, values, fmt, markers)

                return api.answer(name, params, accept, service.guard.database, run,
                                  min_group_size=service.min_group_size)  # fmt: skip

            try:
                answer = self._watched(work)
            except questions.QuestionError as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": exc.reason, "detail": str(exc)})
                return
            except QueryRefusedError as exc:
                self._refuse(exc, as_json=True)
                return
            except ClickHouseError as exc:
                log.warning("question %s failed: %s", name, exc)
                self._json(503, {"error": "unavailable", "detail": "ClickHouse did not answer"})
                return
        if answer is not None:
            self._reply(HTTPStatus.OK, answer.body, content_type=answer.content_type)

    def _dashboard(self, params: dict[str, list[str]]) -> None:
        if "token" in params:
            self._login(params["token"][-1], params)
            return
        if self._caller() is None:
            return
        with self.service.slots.take() as client:
            if client is None:
                self._refuse(_busy())
                return
            try:
                since = params.get("since", ["24h"])[0]
                page = dashboard.render(self.service.asker(client), since,
                                        min_group_size=self.service.min_group_size)  # fmt: skip
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


class _Handler(_Answering):
    """The endpoints."""

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
        elif url.path == "/static/plotly.min.js":
            self._reply(HTTPStatus.OK, dashboard.plotly_js(), content_type=JS, cache=True)
        elif url.path == "/v1/openapi.json":
            self._json(HTTPStatus.OK, api.openapi())
        elif url.path == "/dashboard":
            self._dashboard(params)
        elif url.path == "/v1/questions" or url.path.startswith("/v1/questions/"):
            self._questions(url.path.removeprefix("/v1/questions").strip("/"), params)
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
        path = urlsplit(self.path).path
        if path in ("/v1/erasures", "/v1/erasures/verify"):
            self._erasure("verify" if path.endswith("/verify") else "erase", body)
            return
        prefix = params.get("query", [""])[0]
        self._query(f"{prefix} {body}".strip(), params)

    def _erasure(self, action: str, body: str) -> None:
        """Erase a person, or verify an erasure: the admin token only. Answers when done (an
        erasure waits for the sinks: minutes at most, ``PULSE_ERASURE_WAIT_S``)."""
        caller = self._caller()
        if caller is None:
            return
        if not caller.admin:
            self._problem(HTTPStatus.FORBIDDEN, "forbidden", "erasures need the admin token")
            return
        if self.service.erasures is None:
            detail = "this process does not erase: ask the sinks' query port"
            self._problem(HTTPStatus.NOT_FOUND, "not_available", detail)
            return
        try:
            request = json.loads(body or "{}")
            if not isinstance(request, dict):
                raise ValueError("the request is a JSON object")
            answer = self.service.erasures(action, request)
        except (ValueError, RecursionError) as exc:
            self._problem(HTTPStatus.BAD_REQUEST, "invalid_request", str(exc))
            return
        except SinkError as exc:
            log.warning("erasure failed: %s", exc)
            self._problem(HTTPStatus.SERVICE_UNAVAILABLE, "erasure_failed", str(exc))
            return
        self._json(HTTPStatus.OK, answer)

    def _ready(self) -> None:
        try:  # ready when ClickHouse answers
            call("checking ClickHouse", self.service.slots.control.command, "SELECT 1")
        except ClickHouseError as exc:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc}\n".encode())
            return
        self._reply(HTTPStatus.OK, b"ready\n")


def handler(service: Service) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"service": service})


def _endpoint(path: str) -> str:
    """The path as a metrics label: known endpoints, questions as one, the rest as /."""
    path = urlsplit(path).path
    if path.startswith("/v1/questions/"):
        return "/v1/questions/*"
    return path if path in ENDPOINTS else "/"


def _unauthorized() -> QueryRefusedError:
    return QueryRefusedError(
        "unauthorized", "a read token is required (Authorization: Bearer <token>)", 401,
        AUTHENTICATION_FAILED, "AUTHENTICATION_FAILED",
    )  # fmt: skip


def _busy() -> QueryRefusedError:
    return QueryRefusedError(
        "too_many_queries", "the query port runs its maximum of queries; retry", 429, 202,
        "TOO_MANY_SIMULTANEOUS_QUERIES",
    )  # fmt: skip
