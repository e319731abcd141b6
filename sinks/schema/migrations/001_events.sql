-- One row per enriched event. ReplacingMergeTree on the sorting key (which ends in event_id) is
-- the final backstop against duplicates; queries that must be exact use FINAL.
CREATE TABLE IF NOT EXISTS {database}.events
(
    event_id          UUID,
    event_time        DateTime64(3, 'UTC'),
    received_at       DateTime64(3, 'UTC'),
    lateness_ms       Int64,
    instance_id       LowCardinality(String),
    frontend_system   LowCardinality(String),
    session_id        String,
    user_id           String,
    plugin_id         LowCardinality(String),
    extension         LowCardinality(String),
    route_ref         LowCardinality(String),
    action            LowCardinality(String),
    subject           String,
    value             Nullable(Float64),
    attributes        Map(LowCardinality(String), String),
    entity_ref        String,
    search_types      LowCardinality(String),
    is_page_view      Bool,
    source_partition  Int32,
    source_offset     Int64,
    inserted_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (plugin_id, action, event_time, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
