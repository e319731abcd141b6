-- Events the stream could not window: they arrived later than the window retention
-- (PULSE_WINDOW_RETENTION_S) allows. They are in `events` and the rollups, and not in
-- `counts_1m`/`usage_1m`. Per event day, instance and plugin: every event, the events in an
-- emitted window count, and the difference. The counts of the last flush interval may not be
-- emitted yet, so today's difference can be briefly positive for that reason too.
CREATE VIEW IF NOT EXISTS {database}.unwindowed_daily AS
SELECT
    day,
    instance_id,
    plugin_id,
    events,
    windowed,
    toInt64(events) - toInt64(windowed) AS unwindowed
FROM
(
    SELECT day, instance_id, plugin_id, sum(events) AS events
    FROM {database}.usage_daily
    GROUP BY day, instance_id, plugin_id
) AS all_events
LEFT JOIN
(
    SELECT toDate(window_start) AS day, instance_id, plugin_id, sum(event_count) AS windowed
    FROM {database}.counts_1m FINAL
    GROUP BY day, instance_id, plugin_id
) AS counted USING (day, instance_id, plugin_id);
