-- Absolute windowed counts from the streams stage, one row per (window key, source partition)
-- and version; the highest version (the source offset of the last event counted) wins.
CREATE TABLE IF NOT EXISTS {database}.counts_1m
(
    window_start      DateTime64(3, 'UTC'),
    window_size_ms    UInt32,
    instance_id       LowCardinality(String),
    plugin_id         LowCardinality(String),
    extension         LowCardinality(String),
    action            LowCardinality(String),
    source_partition  Int32,
    event_count       UInt64,
    value_sum         Float64,
    version           Int64,
    emitted_at        DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, instance_id, plugin_id, extension, action, source_partition)
SETTINGS non_replicated_deduplication_window = 1000;

-- What analysts query: the latest count of each window key, partitions summed.
CREATE VIEW IF NOT EXISTS {database}.usage_1m AS
SELECT
    window_start,
    instance_id,
    plugin_id,
    extension,
    action,
    sum(event_count) AS events,
    sum(value_sum) AS value_sum
FROM {database}.counts_1m FINAL
GROUP BY window_start, instance_id, plugin_id, extension, action;
