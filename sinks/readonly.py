"""Read-only guard for analysts' SQL, using ClickHouse's own parser.

chDB shares one session per process and runs multi-statement strings, and clickhouse-connect's
chDB backend cannot restore ``readonly`` after a per-call ``SET`` (the setting then sticks to the
writer's session). So instead of a session setting, each query is parsed by ClickHouse
(``formatQuerySingleLine``): it must be exactly one statement of a reading kind. SELECTs then run
with a query-level ``SETTINGS readonly = 2`` (reads only; a query may still tune its settings).
"""

from __future__ import annotations

import re

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import call
from sinks.errors import ClickHouseRejectedError

READING_KINDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"})
_FORMAT = re.compile(r"\sFORMAT\s+([A-Za-z0-9_]+)$")


def guard(client: Client, sql: str) -> tuple[str, str | None]:
    """Return (the single normalised statement without FORMAT, the FORMAT it asked for)."""
    normalised = call(
        "parsing query",
        client.query,
        "SELECT formatQuerySingleLine({q:String})",
        parameters={"q": sql},
    ).result_rows[0][0]
    kind = normalised.split(None, 1)[0].upper() if normalised.strip() else ""
    if kind not in READING_KINDS:
        raise ClickHouseRejectedError(
            f"only reading queries are allowed here ({', '.join(sorted(READING_KINDS))}), "
            f"not {kind or 'an empty query'}",
            164,
            "READONLY",
        )
    fmt = None
    match = _FORMAT.search(normalised)
    if match:
        fmt = match.group(1)
        normalised = normalised[: match.start()]
    if kind in ("SELECT", "WITH"):
        normalised += " SETTINGS readonly = 2"
    return normalised, fmt


def run_readonly(
    client: Client, sql: str, default_format: str, parameters: dict[str, object] | None = None
) -> bytes:
    """Run one reading statement; ``parameters`` fill its ``{name:Type}`` placeholders."""
    statement, fmt = guard(client, sql)
    return call(
        "query",
        client.raw_query,
        statement,
        parameters=parameters or None,
        fmt=fmt or default_format,
    )
