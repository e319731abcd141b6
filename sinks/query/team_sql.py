"""The SQL of the questions about people and groups (registered in ``questions``).

Groups and their populations come from ``group_members``: the latest snapshot at or before the
last day of the range is each group's population (members at the end of the range, never
today's org chart). Activity comes from ``usage_daily_by_group``, where an event counts once
in each group its user was in when it happened, or from raw ``events`` (lifecycle, funnel).
Placeholders: ``{db}``, ``{days}`` (the range's whole days), ``{last_day}``, ``{filters}``
(instance, plugin, frontend system; on raw events also --group), ``{group_rows}`` (--group and
--group-type on a row of groups), ``{bucket}``, ``{prev}``/``{next}`` (a period's
neighbours), ``{first_period}``/``{last_period}``.
"""

NO_GROUP = "(no group)"

# Each group's population on the range's last day. A top plugin has the most users, then the
# most events, then the first id.
SNAPSHOT = (
    "snap AS (SELECT ref, argMax(type, synced_at) AS type, argMax(title, synced_at) AS title, "
    "argMax(parents, synced_at) AS parents, argMax(ancestors, synced_at) AS ancestors, "
    "argMax(members, synced_at) AS members, argMax(deleted, synced_at) AS deleted "
    "FROM {db}.group_members WHERE day <= {last_day} GROUP BY ref)"
)
# A group row: the group itself, its snapshot (if any), its population (unknown without one).
_GROUP = (
    "r.group_ref AS group_ref, s.title AS title, s.type AS type, s.parents AS parents, "
    "if(s.ref = '', NULL, toNullable(s.members)) AS members"
)
_ROWS = (
    "refs AS (SELECT ref AS group_ref FROM snap WHERE NOT deleted "
    "UNION DISTINCT SELECT group_ref FROM act)"
)

TEAMS = (
    "WITH " + SNAPSHOT + ", "
    "act AS (SELECT toString(group_ref) AS group_ref, uniqExactMerge(users) AS active_users, "
    "sum(events) AS events FROM {db}.usage_daily_by_group WHERE {days}{filters} "
    "GROUP BY group_ref), "
    "tops AS (SELECT group_ref, argMin(plugin_id, (-toInt64(u), -toInt64(e), plugin_id)) "
    "AS top_plugin FROM "
    "(SELECT toString(group_ref) AS group_ref, plugin_id, uniqExactMerge(users) AS u, "
    "sum(events) AS e FROM {db}.usage_daily_by_group WHERE {days}{filters} "
    "GROUP BY group_ref, plugin_id) GROUP BY group_ref), " + _ROWS + " "
    "SELECT " + _GROUP + ", a.active_users AS active_users, "
    "if(members > 0, round(100 * active_users / members, 1), NULL) AS adoption, "
    "a.events AS events, t.top_plugin AS top_plugin "
    "FROM refs AS r LEFT JOIN snap AS s ON s.ref = r.group_ref "
    "LEFT JOIN act AS a ON a.group_ref = r.group_ref "
    "LEFT JOIN tops AS t ON t.group_ref = r.group_ref WHERE {group_rows} "
    "ORDER BY active_users DESC, members DESC, group_ref LIMIT {limit:UInt32}"
)

PLUGIN_ADOPTION = (
    "WITH " + SNAPSHOT + ", "
    "act AS (SELECT toString(group_ref) AS group_ref, uniqExactMerge(users) AS users, "
    "sum(events) AS events, sum(page_views) AS page_views FROM {db}.usage_daily_by_group "
    "WHERE {days}{filters} GROUP BY group_ref), " + _ROWS + " "
    "SELECT " + _GROUP + ", a.users AS users, "
    "if(members > 0, round(100 * users / members, 1), NULL) AS adoption, "
    "a.events AS events, a.page_views AS page_views "
    "FROM refs AS r LEFT JOIN snap AS s ON s.ref = r.group_ref "
    "LEFT JOIN act AS a ON a.group_ref = r.group_ref WHERE {group_rows} "
    "ORDER BY adoption DESC NULLS LAST, users DESC, group_ref LIMIT {limit:UInt32}"
)

TEAM_PLUGINS = (
    "WITH " + SNAPSHOT + ", "
    "(SELECT toNullable(members) FROM snap WHERE ref = {group:String} AND NOT deleted) "
    "AS population "
    "SELECT plugin_id, population AS members, uniqExactMerge(users) AS users, "
    "if(members > 0, round(100 * users / members, 1), NULL) AS adoption, "
    "sum(events) AS events, sum(page_views) AS page_views FROM {db}.usage_daily_by_group "
    "WHERE {days}{filters} AND group_ref = {group:String} GROUP BY plugin_id "
    "ORDER BY users DESC, events DESC, plugin_id LIMIT {limit:UInt32}"
)

DORMANT_TEAMS = (
    "WITH " + SNAPSHOT + ", "
    "act AS (SELECT DISTINCT toString(group_ref) AS group_ref FROM {db}.usage_daily_by_group "
    "WHERE {days}{filters}), "
    "seen AS (SELECT toString(group_ref) AS group_ref, max(day) AS last_active "
    "FROM {db}.usage_daily_by_group WHERE day < toDate({since:DateTime64(3)}){filters} "
    "GROUP BY group_ref) "
    "SELECT s.ref AS group_ref, s.title AS title, s.type AS type, s.parents AS parents, "
    "s.members AS members, if(l.group_ref = '', NULL, toNullable(l.last_active)) AS last_active "
    "FROM snap AS s LEFT JOIN act AS a ON a.group_ref = s.ref "
    "LEFT JOIN seen AS l ON l.group_ref = s.ref "
    "WHERE NOT s.deleted AND s.members > 0 AND a.group_ref = '' AND {group_rows} "
    "ORDER BY members DESC, group_ref LIMIT {limit:UInt32}"
)

# PostHog's lifecycle: per period, each user active in it is new (first event ever in it),
# returning (active in the previous period too) or resurrecting (not in the previous one, but
# before); a user active in the previous period and not in this one is dormant.
USER_LIFECYCLE = (
    "WITH per AS (SELECT user_id, {bucket} AS period FROM {db}.events FINAL "
    "WHERE user_id != '' AND event_time < {until:DateTime64(3)}{filters} "
    "GROUP BY user_id, period), "
    "people AS (SELECT user_id, groupArray(period) AS periods, min(period) AS first "
    "FROM per GROUP BY user_id) "
    "SELECT period, countIf(status = 'new') AS new_users, "
    "countIf(status = 'returning') AS returning_users, "
    "countIf(status = 'resurrecting') AS resurrecting_users, "
    "countIf(status = 'dormant') AS dormant_users FROM "
    "(SELECT p AS period, multiIf(has(periods, p) AND first = p, 'new', "
    "has(periods, p) AND has(periods, {prev}), 'returning', has(periods, p), 'resurrecting', "
    "has(periods, {prev}), 'dormant', '') AS status FROM people "
    "ARRAY JOIN arrayDistinct(arrayConcat(periods, arrayMap(p -> {next}, periods))) AS p "
    "WHERE p >= {first_period} AND p <= {last_period}) "
    "WHERE status != '' GROUP BY period ORDER BY period"
)

# DAU / MAU per day, MAU being the distinct users of the 30 days ending that day: each day's
# users state is merged into the 30 days it belongs to.
STICKINESS = (
    "SELECT addDays(day, n) AS d, uniqExactMergeIf(users, n = 0) AS dau, "
    "uniqExactMerge(users) AS mau, round(if(mau = 0, 0, dau / mau), 4) AS stickiness "
    "FROM {db}.{daily} ARRAY JOIN range(30) AS n "
    "WHERE day >= toDate({since:DateTime64(3)}) - 29 AND day <= {last_day}{filters}{in_group} "
    "GROUP BY d HAVING d >= toDate({since:DateTime64(3)}) AND d <= {last_day} ORDER BY d"
)

# The scaffolder's funnel per template (the entity ref of every scaffolder event about it):
# users who opened it, who went past the first step ("Next Step (n)" clicks), who created.
TEMPLATE_FUNNEL = (
    "SELECT entity_ref AS template, "
    "uniqExactIf(user_id, user_id != '' AND action = 'navigate') AS opened, "
    "uniqExactIf(user_id, user_id != '' AND action = 'click' "
    "AND startsWith(subject, 'Next Step')) AS next_step, "
    "uniqExactIf(user_id, user_id != '' AND action = 'create') AS created, "
    "countIf(action = 'create') AS runs, "
    "sumIf(ifNull(value, 0), action = 'create') AS time_saved FROM {db}.events FINAL "
    "WHERE {where} AND entity_kind = 'template' "
    "GROUP BY template ORDER BY created DESC, opened DESC, template LIMIT {limit:UInt32}"
)
