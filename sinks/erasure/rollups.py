"""The usage rollups an erasure corrects, and the statements that do it (pure).

The rollups are materialized from ``events`` on insert, so deleting a person's events leaves
them counted. Sums are corrected by inserting the person's contribution negated (the sum
columns add modulo 2^64, so a negated count is its two's complement); the exact sets of users
and sessions, which cannot be subtracted from, are recounted from ``events`` for every key the
person touched and written over each of the key's rows, and a patch row with the recount is
added after that rewrite for events that arrived while it ran (a union of equal sets is the set).
"""

from __future__ import annotations

from dataclasses import dataclass

DIMENSIONS = ("instance_id", "frontend_system", "plugin_id", "extension", "action", "user_verified")
GROUP_REF = "arrayJoin(if(empty(groups), ['(no group)'], groups))"  # as the views write it
IDS = "{ids:Array(String)}"


@dataclass(frozen=True)
class Rollup:
    table: str
    time: str  # the time column
    bucket: str  # its value computed from an event
    by_group: bool = False

    @property
    def keys(self) -> str:
        group = ("group_ref",) if self.by_group else ()
        return ", ".join((self.time, *group, *DIMENSIONS))

    def key_select(self) -> str:
        """The key of each event (one row per group of the event's user, by group)."""
        group = (f"{GROUP_REF} AS group_ref",) if self.by_group else ()
        return ", ".join((f"{self.bucket} AS {self.time}", *group, *DIMENSIONS))


HOUR = "toStartOfHour(toDateTime(event_time, 'UTC'))"  # a DateTime, as the rollups' hour
ROLLUPS = (
    Rollup("usage_hourly", "hour", HOUR),
    Rollup("usage_daily", "day", "toDate(event_time)"),
    Rollup("usage_hourly_by_group", "hour", HOUR, by_group=True),
    Rollup("usage_daily_by_group", "day", "toDate(event_time)", by_group=True),
)
MEASURES = "events, page_views, value_sum, users, sessions"


def touched(db: str, rollup: Rollup, keys_table: str) -> str:
    """Keep the keys of the person's events, before they are deleted."""
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.{keys_table} ENGINE = MergeTree ORDER BY tuple() "
        f"AS SELECT DISTINCT {rollup.key_select()} FROM {db}.events WHERE user_id IN {IDS}"
    )


def negated(db: str, rollup: Rollup) -> str:
    """The person's contribution to the rollup's sums, negated (empty sets)."""
    return (
        f"INSERT INTO {db}.{rollup.table} ({rollup.keys}, {MEASURES}) "
        f"SELECT {rollup.key_select()}, toUInt64(-count()), toUInt64(-countIf(is_page_view)), "
        f"-sum(ifNull(value, 0)), uniqExactStateIf(user_id, false), "
        f"uniqExactStateIf(session_id, false) "
        f"FROM {db}.events WHERE user_id IN {IDS} GROUP BY {rollup.keys}"
    )


def recount(db: str, rollup: Rollup, keys_table: str) -> str:
    """Every touched key's users and sessions as ``events`` holds them now; a key none of whose
    events is left has empty sets."""
    return (
        f"SELECT {rollup.keys}, toUInt8(1) AS hit, "
        f"uniqExactStateIf(user_id, present AND user_id != '') AS users, "
        f"uniqExactStateIf(session_id, present) AS sessions FROM ("
        f"SELECT * FROM (SELECT {rollup.key_select()}, user_id, session_id, true AS present "
        f"FROM {db}.events WHERE {rollup.bucket} IN (SELECT {rollup.time} FROM {db}.{keys_table})"
        f") WHERE ({rollup.keys}) IN (SELECT {rollup.keys} FROM {db}.{keys_table}) "
        f"UNION ALL SELECT {rollup.keys}, '', '', false FROM {db}.{keys_table}"
        f") GROUP BY {rollup.keys}"
    )


def recount_table(db: str, rollup: Rollup, keys_table: str, fix_table: str) -> str:
    return f"CREATE TABLE {db}.{fix_table} ENGINE = Join(ANY, LEFT, {rollup.keys}) AS " + recount(
        db, rollup, keys_table
    )


def rewrite_sets(db: str, rollup: Rollup, fix_table: str) -> str:
    """Every row of a touched key gets the key's recounted sets (sums untouched)."""
    get = f"joinGet('{db}.{fix_table}', '{{}}', {rollup.keys})"
    return (
        f"ALTER TABLE {db}.{rollup.table} UPDATE users = {get.format('users')}, "
        f"sessions = {get.format('sessions')} WHERE {get.format('hit')} = 1"
    )


def patch(db: str, rollup: Rollup, keys_table: str) -> str:
    """The recount again, as rows with nothing to add to the sums."""
    return (
        f"INSERT INTO {db}.{rollup.table} ({rollup.keys}, {MEASURES}) "
        f"SELECT {rollup.keys}, 0, 0, 0, users, sessions "
        f"FROM ({recount(db, rollup, keys_table)})"
    )


def differences(db: str, rollup: Rollup, buckets: str) -> str:
    """The number of keys, in the time buckets given, whose rollup figures differ from a
    recount of ``events`` (a key whose every figure is zero counts as no row)."""
    having = "HAVING e != 0 OR u != 0 OR s != 0"
    mine = (
        f"SELECT {rollup.keys}, sum(events) AS e, sum(page_views) AS p, "
        f"round(sum(value_sum), 6) AS v, uniqExactMerge(users) AS u, "
        f"uniqExactMerge(sessions) AS s FROM {db}.{rollup.table} "
        f"WHERE {rollup.time} IN {buckets} GROUP BY {rollup.keys} {having}"
    )
    theirs = (
        f"SELECT {rollup.keys}, count() AS e, countIf(is_page_view) AS p, "
        f"round(sum(ifNull(value, 0)), 6) AS v, uniqExactIf(user_id, user_id != '') AS u, "
        f"uniqExact(session_id) AS s FROM (SELECT {rollup.key_select()}, is_page_view, value, "
        f"user_id, session_id FROM {db}.events WHERE {rollup.bucket} IN {buckets}) "
        f"GROUP BY {rollup.keys} {having}"
    )
    return (
        f"SELECT count() FROM (SELECT * FROM (({mine}) EXCEPT ({theirs})) "
        f"UNION ALL SELECT * FROM (({theirs}) EXCEPT ({mine})))"
    )
