-- Hourly and daily usage per instance/frontend system/plugin/extension/action, kept up to date by materialized
-- views on inserts into events, so DAU/WAU/MAU and top-N queries never scan raw events.
-- Unique users and sessions are exact sets (uniqExact states): merging days gives exact weekly
-- and monthly figures. A retried insert carries the same deduplication token; a block dropped
-- as a duplicate in events is not pushed to these views, and inserts set
-- deduplicate_blocks_in_dependent_materialized_views so a view's own block is deduplicated too.
CREATE TABLE IF NOT EXISTS {database}.usage_hourly
(
    hour           DateTime('UTC'),
    instance_id    LowCardinality(String),
    frontend_system LowCardinality(String),
    plugin_id      LowCardinality(String),
    extension      LowCardinality(String),
    action         LowCardinality(String),
    events         SimpleAggregateFunction(sum, UInt64),
    page_views     SimpleAggregateFunction(sum, UInt64),
    value_sum      SimpleAggregateFunction(sum, Float64),
    users          AggregateFunction(uniqExact, String),
    sessions       AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, instance_id, frontend_system, plugin_id, extension, action)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_hourly_mv TO {database}.usage_hourly AS
SELECT
    toStartOfHour(event_time) AS hour,
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
GROUP BY hour, instance_id, frontend_system, plugin_id, extension, action;

CREATE TABLE IF NOT EXISTS {database}.usage_daily
(
    day            Date,
    instance_id    LowCardinality(String),
    frontend_system LowCardinality(String),
    plugin_id      LowCardinality(String),
    extension      LowCardinality(String),
    action         LowCardinality(String),
    events         SimpleAggregateFunction(sum, UInt64),
    page_views     SimpleAggregateFunction(sum, UInt64),
    value_sum      SimpleAggregateFunction(sum, Float64),
    users          AggregateFunction(uniqExact, String),
    sessions       AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, instance_id, frontend_system, plugin_id, extension, action)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_daily_mv TO {database}.usage_daily AS
SELECT
    toDate(event_time) AS day,
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
GROUP BY day, instance_id, frontend_system, plugin_id, extension, action;
