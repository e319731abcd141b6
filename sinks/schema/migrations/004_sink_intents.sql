-- What each sink is about to insert, written before the insert: (table, topic, partition, first
-- offset, last offset). A sink that takes over a partition whose committed offset has an intent
-- re-reads exactly that range and inserts it under the same deduplication token, so a batch a
-- killed sink may or may not have inserted is inserted once (see README, Sinks).
CREATE TABLE IF NOT EXISTS {database}.sink_intents
(
    target        LowCardinality(String),
    topic         LowCardinality(String),
    partition     Int32,
    first_offset  Int64,
    last_offset   Int64,
    written_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(written_at)
ORDER BY (target, topic, partition, first_offset)
TTL toDateTime(written_at) + INTERVAL 7 DAY;

-- A replayed batch must meet its first attempt's token in the deduplication window even when
-- many partitions were inserted in between.
ALTER TABLE {database}.events MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {database}.counts_1m MODIFY SETTING non_replicated_deduplication_window = 10000;
