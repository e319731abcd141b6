-- Who uses what: each event carries the groups its user was in when it happened (EnrichedEvent
-- v3, from the catalog's people); rows written before have none. Group refs are few and
-- repeated on every event: LowCardinality.
ALTER TABLE {database}.events
    ADD COLUMN IF NOT EXISTS groups Array(LowCardinality(String)) DEFAULT [] AFTER user_id;

-- Each group's population per UTC day, from pulse.catalog.groups: the catalog sync republishes
-- every group at least once a day, so the latest record of a (day, ref) is that day's
-- snapshot, and the latest snapshot at or before a day is the population on that day.
CREATE TABLE IF NOT EXISTS {database}.group_members
(
    ref             String,
    type            LowCardinality(String),
    title           String,
    parents         Array(String),
    ancestors       Array(String),
    members         UInt32,
    direct_members  UInt32,
    deleted         Bool,
    synced_at       DateTime64(3, 'UTC'),
    day             Date MATERIALIZED toDate(synced_at)
)
ENGINE = ReplacingMergeTree(synced_at)
ORDER BY (day, ref)
SETTINGS non_replicated_deduplication_window = 1000;

-- Usage per group, hourly and daily: usage_hourly and usage_daily with the group as the first
-- dimension after the time, so every question that reads a rollup can be asked about one
-- group's members. An event counts once in each of its user's groups: a user in two teams
-- counts in both, and once in their department. Events of users the catalog does not know
-- (and of no user) count in '(no group)'. Unique users and sessions are exact sets
-- (uniqExact states). Events written before the groups column existed are not in these.
CREATE TABLE IF NOT EXISTS {database}.usage_hourly_by_group
(
    hour            DateTime('UTC'),
    group_ref       LowCardinality(String),
    instance_id     LowCardinality(String),
    frontend_system LowCardinality(String),
    plugin_id       LowCardinality(String),
    extension       LowCardinality(String),
    action          LowCardinality(String),
    events          SimpleAggregateFunction(sum, UInt64),
    page_views      SimpleAggregateFunction(sum, UInt64),
    value_sum       SimpleAggregateFunction(sum, Float64),
    users           AggregateFunction(uniqExact, String),
    sessions        AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, group_ref, instance_id, frontend_system, plugin_id, extension, action)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_hourly_by_group_mv TO {database}.usage_hourly_by_group AS
SELECT
    toStartOfHour(event_time) AS hour,
    arrayJoin(if(empty(groups), ['(no group)'], groups)) AS group_ref,
    instance_id,
    frontend_system,
    plugin_id,
    extension,
    action,
    count() AS events,
    countIf(is_page_view) AS page_views,
    sum(ifNull(value, 0)) AS value_sum,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqExactState(session_id) AS sessions
FROM {database}.events
GROUP BY hour, group_ref, instance_id, frontend_system, plugin_id, extension, action;

CREATE TABLE IF NOT EXISTS {database}.usage_daily_by_group
(
    day             Date,
    group_ref       LowCardinality(String),
    instance_id     LowCardinality(String),
    frontend_system LowCardinality(String),
    plugin_id       LowCardinality(String),
    extension       LowCardinality(String),
    action          LowCardinality(String),
    events          SimpleAggregateFunction(sum, UInt64),
    page_views      SimpleAggregateFunction(sum, UInt64),
    value_sum       SimpleAggregateFunction(sum, Float64),
    users           AggregateFunction(uniqExact, String),
    sessions        AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, group_ref, instance_id, frontend_system, plugin_id, extension, action)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_daily_by_group_mv TO {database}.usage_daily_by_group AS
SELECT
    toDate(event_time) AS day,
    arrayJoin(if(empty(groups), ['(no group)'], groups)) AS group_ref,
    instance_id,
    frontend_system,
    plugin_id,
    extension,
    action,
    count() AS events,
    countIf(is_page_view) AS page_views,
    sum(ifNull(value, 0)) AS value_sum,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqExactState(session_id) AS sessions
FROM {database}.events
GROUP BY day, group_ref, instance_id, frontend_system, plugin_id, extension, action;
