-- Whose identity Backstage verified: events posted by Pulse's Backstage backend plugin carry the
-- user Backstage says signed in (EnrichedEvent v4 user_verified); a user a browser or producer
-- only claims is not verified. The rollups gain it as their last dimension, so every question
-- can count verified identities only; rows written before are unverified. The views are dropped
-- and created again: events inserted in between would miss the rollups, so the sinks are stopped
-- while this runs (docs/operators.md). ALTER ... MODIFY QUERY would change them in place, but a
-- view changed so stops deduplicating retried inserts until the server restarts
-- (test_chdb.py::test_migrations_keep_rollups_exact_for_retried_inserts).
ALTER TABLE {database}.events
    ADD COLUMN IF NOT EXISTS user_verified Bool DEFAULT false AFTER groups;

ALTER TABLE {database}.usage_hourly
    ADD COLUMN IF NOT EXISTS user_verified Bool,
    MODIFY ORDER BY (hour, instance_id, frontend_system, plugin_id, extension, action, user_verified);

DROP VIEW IF EXISTS {database}.usage_hourly_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_hourly_mv TO {database}.usage_hourly AS
SELECT
    toStartOfHour(event_time) AS hour,
    instance_id,
    frontend_system,
    plugin_id,
    extension,
    action,
    user_verified,
    count() AS events,
    countIf(is_page_view) AS page_views,
    sum(ifNull(value, 0)) AS value_sum,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqExactState(session_id) AS sessions
FROM {database}.events
GROUP BY hour, instance_id, frontend_system, plugin_id, extension, action, user_verified;

ALTER TABLE {database}.usage_daily
    ADD COLUMN IF NOT EXISTS user_verified Bool,
    MODIFY ORDER BY (day, instance_id, frontend_system, plugin_id, extension, action, user_verified);

DROP VIEW IF EXISTS {database}.usage_daily_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_daily_mv TO {database}.usage_daily AS
SELECT
    toDate(event_time) AS day,
    instance_id,
    frontend_system,
    plugin_id,
    extension,
    action,
    user_verified,
    count() AS events,
    countIf(is_page_view) AS page_views,
    sum(ifNull(value, 0)) AS value_sum,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqExactState(session_id) AS sessions
FROM {database}.events
GROUP BY day, instance_id, frontend_system, plugin_id, extension, action, user_verified;

ALTER TABLE {database}.usage_hourly_by_group
    ADD COLUMN IF NOT EXISTS user_verified Bool,
    MODIFY ORDER BY (hour, group_ref, instance_id, frontend_system, plugin_id, extension, action, user_verified);

DROP VIEW IF EXISTS {database}.usage_hourly_by_group_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_hourly_by_group_mv TO {database}.usage_hourly_by_group AS
SELECT
    toStartOfHour(event_time) AS hour,
    arrayJoin(if(empty(groups), ['(no group)'], groups)) AS group_ref,
    instance_id,
    frontend_system,
    plugin_id,
    extension,
    action,
    user_verified,
    count() AS events,
    countIf(is_page_view) AS page_views,
    sum(ifNull(value, 0)) AS value_sum,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqExactState(session_id) AS sessions
FROM {database}.events
GROUP BY hour, group_ref, instance_id, frontend_system, plugin_id, extension, action, user_verified;

ALTER TABLE {database}.usage_daily_by_group
    ADD COLUMN IF NOT EXISTS user_verified Bool,
    MODIFY ORDER BY (day, group_ref, instance_id, frontend_system, plugin_id, extension, action, user_verified);

DROP VIEW IF EXISTS {database}.usage_daily_by_group_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_daily_by_group_mv TO {database}.usage_daily_by_group AS
SELECT
    toDate(event_time) AS day,
    arrayJoin(if(empty(groups), ['(no group)'], groups)) AS group_ref,
    instance_id,
    frontend_system,
    plugin_id,
    extension,
    action,
    user_verified,
    count() AS events,
    countIf(is_page_view) AS page_views,
    sum(ifNull(value, 0)) AS value_sum,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqExactState(session_id) AS sessions
FROM {database}.events
GROUP BY day, group_ref, instance_id, frontend_system, plugin_id, extension, action, user_verified;
