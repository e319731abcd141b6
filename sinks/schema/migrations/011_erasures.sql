-- Receipts of erasures (python -m sinks erase): one row per erasure and stage, the latest wins.
-- A receipt names the person only by keyed ids; it says what was removed and which days and
-- hours of the rollups were recounted, so `sinks erase --verify` can prove it again later.
CREATE TABLE IF NOT EXISTS {database}.erasures
(
    erasure_id    UUID,
    user_id       String,
    user_ids      Array(String),
    requested_by  String,
    requested_at  DateTime64(3, 'UTC'),
    stage         LowCardinality(String),
    completed_at  Nullable(DateTime64(3, 'UTC')),
    rows_removed  Map(String, UInt64),
    days          Array(Date),
    hours         Array(DateTime('UTC')),
    updated_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY erasure_id;
