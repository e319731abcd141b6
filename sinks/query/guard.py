"""Analysts' SQL, confined: ClickHouse parses it, the policy judges the parse, the limits bound it.

Every path that takes SQL from an analyst (the query port, the dashboard, the CLI's ``sql`` and
``query``) runs it here. The query is normalised by ClickHouse (``formatQuerySingleLine``: one
statement or a syntax error), its ``EXPLAIN AST`` is checked by ``policy`` with the query's
parameters bound (so an ``Identifier`` parameter is judged by its value), and a SELECT runs with
Pulse's limits appended as its SETTINGS clause. The checked text is the text that runs.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import call
from sinks.errors import ClickHouseError, ClickHouseRejectedError, QueryRefusedError
from sinks.query.limits import LIMIT_CODES, MARKER_PREFIX, QueryLimits
from sinks.query.policy import Catalog, Policy
from sinks.query.syntax_tree import SyntaxTreeError, parse

_FORMAT = re.compile(r"\sFORMAT\s+([A-Za-z0-9_]+)$")
_FORMAT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_PARAMETER_CODES = frozenset({456, 457})  # UNKNOWN_QUERY_PARAMETER, BAD_QUERY_PARAMETER
CANCELLED_CODE = 394  # QUERY_WAS_CANCELLED


@dataclass(frozen=True)
class Prepared:
    statement: str  # what runs: the normalised query, limits appended to a SELECT
    fmt: str | None  # the FORMAT the query asked for
    kind: str
    marker: str  # its log_comment, to find it in system.processes


def new_marker() -> str:
    return MARKER_PREFIX + uuid.uuid4().hex


class Guard:
    """Runs analysts' queries against ``database`` within ``limits``; thread-safe."""

    def __init__(self, database: str, limits: QueryLimits | None = None) -> None:
        self.database, self.limits = database, limits or QueryLimits()
        self._policy: Policy | None = None
        self._readonly_already = False  # the session is read-only (known with the policy)
        self._lock = threading.Lock()

    def policy(self, client: Client) -> Policy:
        with self._lock:
            if self._policy is None:
                catalog, self._readonly_already = _read_catalog(client)
                self._policy = Policy(self.database, catalog)
            return self._policy

    def normalise(self, client: Client, sql: str) -> tuple[str, str | None]:
        """(ClickHouse's single-line form of the one statement, without FORMAT; the FORMAT)."""
        single_line = "SELECT formatQuerySingleLine({q:String})"
        normalised = _asking("parsing the query", client, single_line, {"q": sql})[0][0]
        match = _FORMAT.search(normalised)
        if not match:
            return normalised, None
        return normalised[: match.start()], match.group(1)

    def prepare(
        self, client: Client, sql: str, parameters: dict[str, object] | None = None
    ) -> Prepared:
        """Refuse (``QueryRefusedError``) or return the statement to run."""
        return self.judge(client, *self.normalise(client, sql), parameters)

    def judge(
        self,
        client: Client,
        normalised: str,
        fmt: str | None,
        parameters: dict[str, object] | None = None,
    ) -> Prepared:
        """The policy's verdict on a normalised statement (see ``normalise``)."""
        policy = self.policy(client)
        policy.precheck(normalised)
        rows = _asking("explaining the query", client, f"EXPLAIN AST {normalised}", parameters)
        try:
            root = parse([row for (row,) in rows])
        except SyntaxTreeError as exc:
            raise QueryRefusedError("unparsable_query", f"cannot judge this query: {exc}",
                                    400, 62, "SYNTAX_ERROR") from exc  # fmt: skip
        kind = policy.check(root, normalised)
        marker = new_marker()
        statement = normalised
        if kind == "SELECT":
            clause = self.limits.clause(marker, readonly=not self._readonly_already)
            statement = f"{normalised} SETTINGS {clause}"
        return Prepared(statement, fmt, kind, marker)

    def run(
        self,
        client: Client,
        sql: str,
        default_format: str,
        parameters: dict[str, object] | None = None,
        prepared: Prepared | None = None,
    ) -> bytes:
        """Run one analyst query; ``parameters`` fill its ``{name:Type}`` placeholders."""
        prepared = prepared or self.prepare(client, sql, parameters)
        fmt = output_format(prepared.fmt or default_format)
        try:
            return call(
                "query",
                client.raw_query,
                prepared.statement,
                parameters=parameters or None,
                fmt=fmt,
            )
        except ClickHouseError as exc:
            refused = _refusal(exc)
            if refused is None:
                raise
            raise refused from exc


def _refusal(exc: ClickHouseError) -> QueryRefusedError | None:
    """A query stopped by Pulse's limits or cancelled, as the refusal it is."""
    if exc.code in LIMIT_CODES:
        return QueryRefusedError("limit_exceeded", str(exc), 413, exc.code, exc.name)
    if exc.code == CANCELLED_CODE:
        return QueryRefusedError("cancelled", str(exc), 499, exc.code, exc.name)
    return None


def _read_catalog(client: Client) -> tuple[Catalog, bool]:
    """What the engine offers, and whether the session is read-only already (a server's
    analysts profile may be; there, setting ``readonly`` again is itself refused)."""
    tables = call("reading table functions", client.query,
                  "SELECT name FROM system.table_functions").result_rows  # fmt: skip
    functions = call("reading functions", client.query,
                     "SELECT name, alias_to, categories FROM system.functions "
                     "WHERE NOT is_aggregate").result_rows  # fmt: skip
    readonly = call("reading readonly", client.command, "SELECT getSetting('readonly')")
    return Catalog.from_rows([t for (t,) in tables], functions), str(readonly) != "0"


def output_format(name: str) -> str:
    """A format's name, checked: the backend appends it to the query text as ``FORMAT <name>``
    (on chDB, which runs multi-statement strings, ``TSV; DROP TABLE …`` would run the DROP)."""
    if not _FORMAT_NAME.fullmatch(name):
        raise QueryRefusedError("bad_format", f"not a format name: {name[:60]!r}", 400, 73,
                                "UNKNOWN_FORMAT")  # fmt: skip
    return name


def cancel(client: Client, marker: str) -> None:
    """Kill the running query tagged ``marker`` (a client went away)."""
    call(
        "cancelling a query",
        client.command,
        "KILL QUERY WHERE Settings['log_comment'] = {m:String} ASYNC",
        parameters={"m": marker},
    )


def _asking(doing: str, client: Client, sql: str, parameters: dict[str, object] | None) -> list:
    try:
        return call(doing, client.query, sql, parameters=parameters or None).result_rows
    except ClickHouseRejectedError as exc:
        reason = "bad_parameter" if exc.code in _PARAMETER_CODES else "syntax_error"
        raise QueryRefusedError(reason, str(exc), 400, exc.code, exc.name) from exc


def run_readonly(
    client: Client,
    sql: str,
    default_format: str,
    parameters: dict[str, object] | None = None,
    database: str = "pulse",
    limits: QueryLimits | None = None,
) -> bytes:
    """One analyst query on ``client`` (a fresh guard: for one-off callers such as the CLI)."""
    return Guard(database, limits).run(client, sql, default_format, parameters)
