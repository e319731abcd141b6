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

import logging
import queue
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry

from sinks.clickhouse import call
from sinks.errors import QueryRefusedError
from sinks.http_service import HttpService
from sinks.query import api, dashboard, questions
from sinks.query.credentials import Credentials
from sinks.query.guard import Guard, output_format
from sinks.query.handler import handler
from sinks.query.limits import QueryLimits
from sinks.query.query_metrics import QueryMetrics

log = logging.getLogger("pulse.sinks.query")


def asker(guard: Guard, client: Client, min_group_size: int = 5) -> dashboard.Ask:
    """Answers saved questions through the guarded path, on ``client``, as published (the
    minimum group size applied where it applies)."""

    def ask(name: str, kw: dict) -> list[dict]:
        question = questions.get(name)
        filters = api.resolve_identity(
            question, kw.get("filters", questions.Filters()), guard.database, kw["since"],
            kw["until"], lambda sql, params, fmt: guard.run(client, sql, fmt, params),
        )  # fmt: skip
        sql, params = questions.render(question, guard.database, **{**kw, "filters": filters})
        output = guard.run(client, sql, "JSON", params)
        return api.published(question, filters, output, min_group_size)[1]

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


# ``erasures(action, request)``: "erase" or "verify" a person named by the JSON request
# ({"user": ref} or {"user_id": keyed id}); the receipt or verification as JSON. Raises
# ValueError for a bad request, SinkError when it could not be done.
Erasures = Callable[[str, dict[str, Any]], dict[str, Any]]


class Service:
    """What one request needs: the guard, the pool, the credentials, the metrics, and (where
    this process can erase) the erasures."""

    def __init__(
        self,
        guard: Guard,
        slots: Slots,
        metrics: QueryMetrics,
        credentials: Credentials,
        min_group_size: int = 5,
        erasures: Erasures | None = None,
    ) -> None:
        self.guard, self.slots, self.metrics = guard, slots, metrics
        self.credentials = credentials
        self.min_group_size = min_group_size
        self.erasures = erasures
        self._refusals: set[tuple[str, str]] = set()

    def refused_once(self, client: str, kind: str, endpoint: str) -> None:
        """Logs a refusal once per client address and kind (never the credential)."""
        if (client, kind) in self._refusals or len(self._refusals) >= 1000:
            return
        self._refusals.add((client, kind))
        log.warning("refused a request from %s to %s: %s", client, endpoint, kind)

    def run(
        self, client: Client, sql: str, fmt: str, values: dict, admin: bool, markers: list[str]
    ) -> bytes:
        """Guarded and limited, or (admin) as written; the guarded query's marker goes to
        ``markers``. Raises QueryRefusedError or ClickHouseError."""
        if admin:
            return self._as_admin(client, sql, fmt, values)
        return self.ask(client, sql, values, fmt, markers)

    def ask(self, client: Client, sql: str, values: dict, fmt: str, markers: list[str]) -> bytes:
        """A reading query through the guard; its marker goes to ``markers``."""
        prepared = self.guard.prepare(client, sql, values)
        markers.append(prepared.marker)
        return self.guard.run(client, sql, fmt, values, prepared=prepared)

    def asker(self, client: Client) -> dashboard.Ask:
        return asker(self.guard, client, self.min_group_size)

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
        read_tokens: dict[str, str] | None = None,
        min_group_size: int = 5,
        erasures: Erasures | None = None,
    ) -> None:
        """``connect``: makes the pool's clients (``max_concurrent`` of them, and one to kill
        queries with). ``registry``: where the request metrics go (the process's; else one of
        its own). ``read_tokens``: consumer name -> token, for reading; ``admin_token``: may
        also run any statement."""
        self.metrics = QueryMetrics(registry or CollectorRegistry())
        self.slots = Slots(connect, max_concurrent)
        credentials = Credentials(read_tokens or {}, admin_token)
        if not credentials.configured:
            log.warning("no read token is configured (PULSE_QUERY_READ_TOKENS, "
                        "PULSE_QUERY_TOKEN_FILE): every query is refused")  # fmt: skip
        service = Service(
            Guard(database, limits), self.slots, self.metrics, credentials, min_group_size,
            erasures,
        )  # fmt: skip
        super().__init__(host, port, handler(service))

    def stop(self) -> None:
        super().stop()
        self.slots.executor.shutdown(wait=False, cancel_futures=True)
