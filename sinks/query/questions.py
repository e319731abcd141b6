"""Saved questions: what Backstage owners ask of their analytics, as parameterised SQL (pure).

Each question reads the rollups (``usage_hourly``/``usage_daily``) where they hold the answer
and raw ``events`` only where it needs a column the rollups do not keep (entity refs, search
terms, first-seen times). User input never becomes SQL text: the time range, filters and limit
are ClickHouse query parameters (``{name:Type}``); the grouping picks one of a fixed set of
expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sinks.errors import SinkError
from sinks.query import team_sql

GROUPINGS = ("hour", "day", "week", "month", "total")
FRONTEND_SYSTEMS = ("", "LEGACY", "NEW", "UNKNOWN")
IDENTITIES = ("", "verified", "all")
MAX_LIMIT = 10_000


class QuestionError(SinkError):
    """An unknown question (``reason`` unknown_question), or a grouping, range or limit outside
    its domain (bad_parameter)."""

    def __init__(self, message: str, reason: str = "bad_parameter") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Filters:
    instance: str = ""
    plugin: str = ""
    frontend_system: str = ""
    group: str = ""  # a group ref: its members (and, on rows of groups, the groups below it)
    group_type: str = ""  # rows of groups of this spec.type only
    # "verified": only events whose user Backstage verified; "all"; "" leaves it to
    # ``resolve_identity`` (verified when the range holds any), and renders as "all".
    identity: str = ""


@dataclass(frozen=True)
class Question:
    name: str
    title: str
    sql: str  # with {bucket} (when grouped), {db} and {where}; parameters in {x:Type} form
    source: str  # "rollup", "events", "dead_letters", or "groups" (the per-group rollup)
    grouped: bool = False
    filters: bool = True
    needs: tuple[str, ...] = ()  # filters that must be given (plugin, group)
    # The minimum group size: for each column counting people, the columns it is the basis
    # of (withheld with it). Applies to questions about groups always, to others when they
    # are asked about one group (see ``privacy``).
    people: tuple[tuple[str, tuple[str, ...]], ...] = ()
    about_groups: bool = False  # rows are groups (group_ref, parents): withheld as a tree
    # Rows bound by sums across periods (lifecycle: last period's actives are this period's
    # returning plus dormant): one withheld cell withholds every other non-zero one.
    linked_rows: bool = False


# Bucket expressions per source: rollups have `hour` and `day` columns, events `event_time`.
_BUCKETS = {
    "events": {
        "hour": "toStartOfHour(event_time)",
        "day": "toDate(event_time)",
        "week": "toMonday(event_time)",
        "month": "toStartOfMonth(event_time)",
        "total": "toDate({since:DateTime64(3)})",
    },
    "rollup": {
        "hour": "hour",
        "day": "day",
        "week": "toMonday(day)",
        "month": "toStartOfMonth(day)",
        "total": "toDate({since:DateTime64(3)})",
    },
}
# Rollups answer for whole hours/days: the ones the range [since, until) touches.
_LAST = "subtractMilliseconds({until:DateTime64(3)}, 1)"
_ROLLUP_RANGE = {
    "hour": f"hour >= toStartOfHour({{since:DateTime64(3)}}) AND hour <= toStartOfHour({_LAST})",
    "day": f"day >= toDate({{since:DateTime64(3)}}) AND day <= toDate({_LAST})",
}
_EVENTS_RANGE = "event_time >= {since:DateTime64(3)} AND event_time < {until:DateTime64(3)}"
_FILTERS = (
    " AND ({instance:String} = '' OR instance_id = {instance:String})"
    " AND ({plugin:String} = '' OR plugin_id = {plugin:String})"
    " AND ({frontend_system:String} = '' OR frontend_system = {frontend_system:String})"
    " AND (NOT {verified:Bool} OR user_verified)"
)

_GROUP_ROWS = (
    "({group:String} = '' OR group_ref = {group:String} OR has(s.ancestors, {group:String})) "
    "AND ({group_type:String} = '' OR s.type = {group_type:String})"
)
_MEMBER_OF = " AND ({group:String} = '' OR has(groups, {group:String}))"
# A period's neighbours, and each grouping's first and last period of the range.
_STEP = {"hour": "addHours({0}, {1})", "day": "addDays({0}, {1})",
         "week": "addWeeks({0}, {1})", "month": "addMonths({0}, {1})"}  # fmt: skip
_GROUP_PEOPLE = (
    ("members", ("members", "active_users", "users", "adoption", "events", "page_views",
                 "top_plugin", "last_active")),
    ("active_users", ("active_users", "adoption", "events", "top_plugin")),
    ("users", ("users", "adoption", "events", "page_views")),
)  # fmt: skip

# Usage figures are about the users counted beside them.
_USAGE_PEOPLE = (("users", ("users", "sessions", "events", "page_views")),)

_USAGE_COLUMNS = (
    "sum(events) AS events, sum(page_views) AS page_views, "
    "uniqExactMerge(users) AS users, uniqExactMerge(sessions) AS sessions"
)

QUESTIONS: dict[str, Question] = {
    q.name: q
    for q in [
        Question(
            "active_users",
            "Active users (DAU/WAU/MAU by grouping), with sessions, events and page views",
            "SELECT {bucket} AS period, uniqExactMerge(users) AS users, "
            "uniqExactMerge(sessions) AS sessions, sum(events) AS events, "
            "sum(page_views) AS page_views FROM {db}.{rollup} WHERE {where} "
            "GROUP BY period ORDER BY period",
            "rollup",
            grouped=True,
            people=_USAGE_PEOPLE,
        ),
        Question(
            "new_vs_returning",
            "Users first seen in each period (new) and users seen before it (returning)",
            "WITH firsts AS (SELECT user_id, min(event_time) AS first_seen FROM {db}.events FINAL "
            "WHERE user_id != '' AND event_time < {until:DateTime64(3)}{filters} "
            "GROUP BY user_id) "
            "SELECT {bucket} AS period, "
            "uniqExactIf(user_id, {first_bucket} = period) AS new_users, "
            "uniqExactIf(user_id, {first_bucket} < period) AS returning_users "
            "FROM {db}.events FINAL INNER JOIN firsts USING (user_id) "
            "WHERE user_id != '' AND {where} GROUP BY period ORDER BY period",
            "events",
            grouped=True,
            people=(("new_users", ("new_users",)), ("returning_users", ("returning_users",))),
        ),
        Question(
            "top_plugins",
            "Plugins by page views (with users, sessions and events)",
            "SELECT plugin_id, " + _USAGE_COLUMNS + " FROM {db}.{rollup} WHERE {where} "
            "GROUP BY plugin_id ORDER BY page_views DESC, users DESC, plugin_id "
            "LIMIT {limit:UInt32}",
            "rollup",
            people=_USAGE_PEOPLE,
        ),
        Question(
            "top_plugins_by_users",
            "Plugins by distinct users (with page views, sessions and events)",
            "SELECT plugin_id, " + _USAGE_COLUMNS + " FROM {db}.{rollup} WHERE {where} "
            "GROUP BY plugin_id ORDER BY users DESC, page_views DESC, plugin_id "
            "LIMIT {limit:UInt32}",
            "rollup",
            people=_USAGE_PEOPLE,
        ),
        Question(
            "plugin_trend",
            "Each plugin's events, page views and users per period",
            "SELECT {bucket} AS period, plugin_id, " + _USAGE_COLUMNS + " FROM {db}.{rollup} "
            "WHERE {where} GROUP BY period, plugin_id ORDER BY period, events DESC, plugin_id",
            "rollup",
            grouped=True,
            people=_USAGE_PEOPLE,
        ),
        Question(
            "instances",
            "Backstage instances by events (with users, sessions and page views)",
            "SELECT instance_id, " + _USAGE_COLUMNS + " FROM {db}.{rollup} WHERE {where} "
            "GROUP BY instance_id ORDER BY events DESC, instance_id LIMIT {limit:UInt32}",
            "rollup",
            people=_USAGE_PEOPLE,
        ),
        Question(
            "top_extensions",
            "Extensions (pages, cards, nav items, legacy components) by events",
            "SELECT plugin_id, extension, " + _USAGE_COLUMNS + " FROM {db}.{rollup} "
            "WHERE {where} AND extension != '' GROUP BY plugin_id, extension "
            "ORDER BY events DESC, plugin_id, extension LIMIT {limit:UInt32}",
            "rollup",
            people=_USAGE_PEOPLE,
        ),
        Question(
            "top_templates",
            "Software templates by runs (scaffolder create), with time saved (sum of value)",
            "SELECT entity_ref AS template, count() AS runs, uniqExact(user_id) AS users, "
            "sum(ifNull(value, 0)) AS time_saved FROM {db}.events FINAL "
            "WHERE {where} AND plugin_id = 'scaffolder' AND action = 'create' "
            "GROUP BY template ORDER BY runs DESC, template LIMIT {limit:UInt32}",
            "events",
            people=(("users", ("users", "runs", "time_saved")),),
        ),
        Question(
            "top_techdocs",
            "TechDocs entities by page views, with distinct users and not-found pages",
            "SELECT entity_ref AS entity, countIf(action = 'navigate') AS views, "
            "uniqExactIf(user_id, action = 'navigate') AS users, "
            "countIf(action = 'not-found') AS not_found FROM {db}.events FINAL "
            "WHERE {where} AND plugin_id = 'techdocs' AND entity_ref != '' "
            "GROUP BY entity ORDER BY views DESC, entity LIMIT {limit:UInt32}",
            "events",
            people=(("users", ("users", "views", "not_found")),),
        ),
        Question(
            "top_entities",
            "Catalog entities by page views",
            "SELECT entity_ref AS entity, entity_kind AS kind, count() AS views, "
            "uniqExact(user_id) AS users FROM {db}.events FINAL "
            "WHERE {where} AND plugin_id = 'catalog' AND action = 'navigate' "
            "AND entity_ref != '' GROUP BY entity, kind ORDER BY views DESC, entity "
            "LIMIT {limit:UInt32}",
            "events",
            people=(("users", ("users", "views")),),
        ),
        Question(
            "top_searches",
            "Search terms by searches, with users and mean result count",
            "SELECT lower(trim(subject)) AS term, count() AS searches, "
            "uniqExact(user_id) AS users, round(avg(ifNull(value, 0)), 2) AS mean_results "
            "FROM {db}.events FINAL WHERE {where} AND action = 'search' AND term != '' "
            "GROUP BY term ORDER BY searches DESC, term LIMIT {limit:UInt32}",
            "events",
            people=(("users", ("users", "searches", "mean_results")),),
        ),
        Question(
            "searches_no_results",
            "Search terms that found nothing",
            "SELECT lower(trim(subject)) AS term, count() AS searches, "
            "uniqExact(user_id) AS users FROM {db}.events FINAL "
            "WHERE {where} AND action = 'search' AND value = 0 AND term != '' "
            "GROUP BY term ORDER BY searches DESC, term LIMIT {limit:UInt32}",
            "events",
            people=(("users", ("users", "searches")),),
        ),
        Question(
            "search_discover_rate",
            "Searches, result clicks (discover), their ratio and the mean rank clicked",
            "SELECT {bucket} AS period, sumIf(events, action = 'search') AS searches, "
            "sumIf(events, action = 'discover') AS discovers, "
            "round(if(searches = 0, 0, discovers / searches), 4) AS discover_rate, "
            "round(if(discovers = 0, 0, sumIf(value_sum, action = 'discover') / discovers), 2) "
            "AS mean_rank, uniqExactMerge(users) AS users FROM {db}.{rollup} WHERE {where} "
            "AND action IN ('search', 'discover') GROUP BY period ORDER BY period",
            "rollup",
            grouped=True,
            people=(("users", ("users", "searches", "discovers", "discover_rate", "mean_rank")),),
        ),
        Question(
            "unwindowed_events",
            "Events per day and instance the stream could not window (later than its "
            "retention): counted in events and the rollups, missing from usage_1m",
            "SELECT day, instance_id, sum(events) AS events, sum(windowed) AS windowed, "
            "sum(unwindowed) AS unwindowed FROM {db}.unwindowed_daily "
            "WHERE " + _ROLLUP_RANGE["day"] + " "
            "AND ({instance:String} = '' OR instance_id = {instance:String}) "
            "AND ({plugin:String} = '' OR plugin_id = {plugin:String}) "
            "GROUP BY day, instance_id ORDER BY day, instance_id",
            "rollup",
            filters=False,
        ),
        Question(
            "dead_letters_by_reason",
            "Dead letters by stage and reason, with the last one's time and detail",
            "SELECT stage, reason, count() AS messages, max(received_at) AS last_seen, "
            "argMax(detail, received_at) AS last_detail FROM {db}.dead_letters "
            "WHERE received_at >= {since:DateTime64(3)} AND received_at < {until:DateTime64(3)} "
            "GROUP BY stage, reason ORDER BY messages DESC, stage, reason",
            "dead_letters",
            filters=False,
        ),
        Question(
            "teams",
            "Groups by active members: members (at the end of the range), active users, "
            "adoption %, events, top plugin",
            team_sql.TEAMS,
            "groups",
            people=_GROUP_PEOPLE,
            about_groups=True,
        ),
        Question(
            "plugin_adoption_by_team",
            "For one plugin (--plugin): each group's users of it and adoption % of its members",
            team_sql.PLUGIN_ADOPTION,
            "groups",
            needs=("plugin",),
            people=_GROUP_PEOPLE,
            about_groups=True,
        ),
        Question(
            "team_plugins",
            "For one group (--group): the plugins its members use, with users and adoption %",
            team_sql.TEAM_PLUGINS,
            "groups",
            needs=("group",),
            people=(
                ("members", ("members", "users", "adoption", "events", "page_views")),
                ("users", ("users", "adoption", "events", "page_views")),
            ),
        ),
        Question(
            "dormant_teams",
            "Groups with members and no activity in the range (with the filters: no use of "
            "that plugin), and their last active day before it",
            team_sql.DORMANT_TEAMS,
            "groups",
            people=_GROUP_PEOPLE,
            about_groups=True,
        ),
        Question(
            "user_lifecycle",
            "Users per period: new (first event ever), returning (active the period before "
            "too), resurrecting (active before, not the period before), dormant (active the "
            "period before, not this one)",
            team_sql.USER_LIFECYCLE,
            "events",
            grouped=True,
            people=tuple(
                (c, (c,))
                for c in ("new_users", "returning_users", "resurrecting_users", "dormant_users")
            ),
            linked_rows=True,
        ),
        Question(
            "stickiness",
            "Stickiness per day: daily active users / users of the 30 days ending that day",
            team_sql.STICKINESS,
            "rollup",
            people=(("mau", ("dau", "mau", "stickiness")), ("dau", ("dau", "stickiness"))),
        ),
        Question(
            "template_funnel",
            "Software templates: users who opened each, went past its first step (Next Step) "
            "and created; runs and time saved",
            team_sql.TEMPLATE_FUNNEL,
            "events",
            people=(
                ("opened", ("opened",)),
                ("next_step", ("next_step",)),
                ("created", ("created", "runs", "time_saved")),
            ),
        ),
    ]
}


def get(name: str) -> Question:
    try:
        return QUESTIONS[name]
    except KeyError:
        known = ", ".join(sorted(QUESTIONS))
        raise QuestionError(
            f"no question named {name!r}; known: {known}", "unknown_question"
        ) from None


def render(
    question: Question,
    database: str,
    *,
    since: datetime,
    until: datetime,
    group_by: str = "day",
    filters: Filters = Filters(),
    limit: int = 20,
) -> tuple[str, dict[str, Any]]:
    """(SQL with parameter placeholders, parameters) for one question."""
    if group_by not in GROUPINGS:
        raise QuestionError(f"group by one of {', '.join(GROUPINGS)}, not {group_by!r}")
    if until <= since:
        raise QuestionError(f"the range is empty: {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}")
    if not 1 <= limit <= MAX_LIMIT:
        raise QuestionError(f"limit must be between 1 and {MAX_LIMIT}")
    for needed in question.needs:
        if not getattr(filters, needed):
            flag = needed.replace("_", "-")
            raise QuestionError(f"{question.name} is asked about one {needed}: give --{flag}")
    if question.name == "user_lifecycle" and group_by == "total":
        raise QuestionError("user_lifecycle compares periods: group by hour, day, week or month")
    sql = _placeholders(question, group_by, filters).replace("{db}", database)
    params = {
        "since": _fmt(since),
        "until": _fmt(until),
        "instance": filters.instance,
        "plugin": filters.plugin,
        "frontend_system": filters.frontend_system,
        "group": filters.group,
        "group_type": filters.group_type,
        "verified": filters.identity == "verified",
        "limit": limit,
    }
    used = set(re.findall(r"\{(\w+):", sql))
    return sql, {k: v for k, v in params.items() if k in used}


def verified_check(
    database: str, *, since: datetime, until: datetime, filters: Filters
) -> tuple[str, dict[str, Any]]:
    """(SQL, parameters) answering whether the days of the range hold any event whose user
    Backstage verified, for the filtered instance: what an unset ``identity`` defaults to."""
    sql = (
        "SELECT toUInt8(count() > 0) AS verified FROM (SELECT 1 FROM {db}.usage_daily "
        f"WHERE user_verified AND {_ROLLUP_RANGE['day']} "
        "AND ({instance:String} = '' OR instance_id = {instance:String}) LIMIT 1)"
    ).replace("{db}", database)
    return sql, {"since": _fmt(since), "until": _fmt(until), "instance": filters.instance}


def _placeholders(question: Question, group_by: str, filters: Filters) -> str:
    # Hourly grouping needs the hourly rollup; everything else reads the daily one.
    rollup = "usage_hourly" if group_by == "hour" else "usage_daily"
    if question.source == "rollup":
        where = _ROLLUP_RANGE["hour" if rollup == "usage_hourly" else "day"]
    else:
        where = _EVENTS_RANGE
    in_group = bool(filters.group) and question.filters
    if question.filters:
        where += _FILTERS
    if in_group and question.source == "rollup":  # the same rollup, per group
        rollup += "_by_group"
        where += " AND group_ref = {group:String}"
    elif in_group and question.source == "events":
        where += _MEMBER_OF
    source = "rollup" if question.source == "rollup" else "events"
    bucket = _BUCKETS[source][group_by]
    first_bucket = _BUCKETS["events"][group_by].replace("event_time", "first_seen")
    if group_by == "total":  # one period: new if first seen within the range
        first_bucket = (
            "if(first_seen >= {since:DateTime64(3)}, toDate({since:DateTime64(3)}), "
            "toDate({since:DateTime64(3)}) - 1)"
        )
    step, period = _STEP.get(group_by, _STEP["day"]), _BUCKETS["events"][group_by]
    by_group = bool(filters.group)  # stickiness of one group's members
    replacements = {
        "{bucket}": bucket,
        "{first_bucket}": first_bucket,
        "{rollup}": rollup,
        "{where}": where,
        "{filters}": (_FILTERS if question.filters else "")
        + (_MEMBER_OF if in_group and question.source == "events" else ""),
        "{days}": _ROLLUP_RANGE["day"],
        "{last_day}": f"toDate({_LAST})",
        "{group_rows}": _GROUP_ROWS,
        "{in_group}": " AND group_ref = {group:String}" if by_group else "",
        "{daily}": "usage_daily_by_group" if by_group else "usage_daily",
        "{prev}": step.format("p", -1),
        "{next}": step.format("p", 1),
        "{first_period}": period.replace("event_time", "{since:DateTime64(3)}"),
        "{last_period}": period.replace("event_time", _LAST),
    }
    sql = question.sql
    for placeholder, text in replacements.items():
        sql = sql.replace(placeholder, text)
    return sql


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, now: datetime) -> datetime:
    """``7d``, ``24h``, ``90m``, ``2w`` (before ``now``), ``now``, or an ISO date/time (UTC)."""
    text = text.strip()
    if text == "now":
        return now
    match = _RELATIVE.match(text)
    if match:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QuestionError(
            f"not a time: {text!r} (use 7d, 24h, 90m, 2w, now, or 2026-01-31[T12:00])"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
