"""How long each table keeps its rows: TTLs set from ``PULSE_EVENTS_RETENTION_DAYS`` (events and
dead letters: what can name a person) and ``PULSE_ROLLUPS_RETENTION_DAYS`` (the aggregates).

Applied by ``sinks migrate`` after the migrations, and only where a table's TTL differs from
the wanted one: changing a TTL rewrites the table's parts, and re-applying the same one would
do so on every migrate. A shorter bound removes the rows past it (at the next merge); a longer
one or none removes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import call
from sinks.schema.migrate import rendered

DEAD_LETTERS_DEFAULT_DAYS = 30  # when events are kept forever (migration 005's TTL)


@dataclass(frozen=True)
class Bound:
    table: str
    time: str  # the expression a row's age is measured from
    kind: str  # "events" or "rollups": which setting bounds it


BOUNDS = (
    Bound("events", "toDateTime(event_time)", "events"),
    Bound("dead_letters", "toDateTime(received_at)", "events"),
    Bound("usage_hourly", "hour", "rollups"),
    Bound("usage_daily", "day", "rollups"),
    Bound("usage_hourly_by_group", "hour", "rollups"),
    Bound("usage_daily_by_group", "day", "rollups"),
    Bound("counts_1m", "toDateTime(window_start)", "rollups"),
    Bound("group_members", "toDateTime(synced_at)", "rollups"),
)
_TTL = re.compile(r" TTL (?P<ttl>.+?)(?= SETTINGS |$)")


def wanted_days(bound: Bound, events_days: int, rollups_days: int) -> int:
    """Days a table keeps its rows (0: forever)."""
    if bound.kind == "rollups":
        return rollups_days
    if bound.table == "dead_letters" and events_days == 0:
        return DEAD_LETTERS_DEFAULT_DAYS
    return events_days


def apply_retention(
    client: Client, database: str, events_days: int, rollups_days: int, cluster: str | None = None
) -> list[str]:
    """Set every bounded table's TTL; return what each table keeps now."""
    if rollups_days and (not events_days or rollups_days < events_days):
        raise ValueError(
            "rollups are kept at least as long as events: PULSE_ROLLUPS_RETENTION_DAYS must be "
            "0 (forever) or at least PULSE_EVENTS_RETENTION_DAYS (which must then be set)"
        )
    local = "_local" if cluster else ""
    engines = dict(
        call(
            "reading the tables' TTLs",
            client.query,
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            parameters={"db": database},
        ).result_rows
    )
    said = []
    for bound in BOUNDS:
        engine = engines.get(bound.table + local)
        if engine is None:
            continue  # a table of a later migration
        days = wanted_days(bound, events_days, rollups_days)
        current = _TTL.search(engine)
        wanted = f"{bound.time} + toIntervalDay({days})" if days else None
        if (current["ttl"] if current else None) != wanted:
            statement = f"ALTER TABLE {database}.{bound.table} " + (
                f"MODIFY TTL {bound.time} + INTERVAL {days} DAY" if days else "REMOVE TTL"
            )
            for each in rendered(statement, cluster):
                call(f"setting the TTL of {bound.table}", client.command, each)
        said.append(f"{bound.table} {f'{days} days' if days else 'forever'}")
    return said
