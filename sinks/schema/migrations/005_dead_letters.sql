-- Every message of the dead-letter topic, for SREs and producers: why, where from, the bytes.
CREATE TABLE IF NOT EXISTS {database}.dead_letters
(
    received_at       DateTime64(3, 'UTC'),
    stage             LowCardinality(String),
    reason            LowCardinality(String),
    detail            String,
    source_topic      LowCardinality(String),
    source_partition  Int32,
    source_offset     Int64,
    batch_index       Nullable(Int32),
    message_key       String,
    payload_base64    String,
    payload_bytes     UInt32,
    headers           Map(String, String),
    dlq_partition     Int32,
    dlq_offset        Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (reason, received_at, dlq_partition, dlq_offset)
TTL toDateTime(received_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000;
