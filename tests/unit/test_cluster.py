import pytest

from sinks.schema.cluster import render
from sinks.schema.migrate import plan


def test_tables_become_replicated_locals_behind_distributed_tables():
    local, distributed = render(
        "CREATE TABLE IF NOT EXISTS db.counts_1m\n(a Int64, version Int64)\n"
        "ENGINE = ReplacingMergeTree(version)\nORDER BY a\n"
        "SETTINGS non_replicated_deduplication_window = 1000",
        "prod",
    )
    assert local.startswith("CREATE TABLE IF NOT EXISTS db.counts_1m_local ON CLUSTER 'prod'")
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/counts_1m_local', "
        "'{replica}', version)" in local
    )
    assert "replicated_deduplication_window = 1000" in local
    assert "non_replicated" not in local
    assert distributed == (
        "CREATE TABLE IF NOT EXISTS db.counts_1m ON CLUSTER 'prod' AS db.counts_1m_local "
        "ENGINE = Distributed('prod', 'db', 'counts_1m_local', cityHash64(window_start, "
        "instance_id, plugin_id, extension, action, source_partition))"
    )


def test_materialized_views_run_local_to_local_and_column_changes_reach_both_tables():
    [mv] = render(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS db.usage_daily_mv TO db.usage_daily AS\n"
        "SELECT toDate(event_time) AS day, count() AS events FROM db.events GROUP BY day",
        "prod",
    )
    assert "ON CLUSTER 'prod' TO db.usage_daily_local AS" in mv
    assert "FROM db.events_local GROUP BY" in mv
    alters = render("ALTER TABLE db.events ADD COLUMN IF NOT EXISTS x UInt8", "prod")
    assert [a.split(" ON ")[0] for a in alters] == [
        "ALTER TABLE db.events_local",
        "ALTER TABLE db.events",
    ]
    [ttl] = render("ALTER TABLE db.events MODIFY TTL toDateTime(event_time) + INTERVAL 9 DAY", "c")
    assert ttl.startswith("ALTER TABLE db.events_local ON CLUSTER 'c' MODIFY TTL")


def test_a_new_sorting_key_column_and_a_view_dropped_on_every_node():
    local, distributed = render(
        "ALTER TABLE db.usage_daily\n    ADD COLUMN IF NOT EXISTS v Bool,\n"
        "    MODIFY ORDER BY (day, plugin_id, v)",
        "prod",
    )
    assert local.startswith("ALTER TABLE db.usage_daily_local ON CLUSTER 'prod'")
    assert local.endswith("MODIFY ORDER BY (day, plugin_id, v)")
    assert distributed.startswith("ALTER TABLE db.usage_daily ON CLUSTER 'prod'")
    assert "ADD COLUMN IF NOT EXISTS v Bool" in distributed
    assert "ORDER BY" not in distributed  # a Distributed table has no sorting key
    assert render("DROP VIEW IF EXISTS db.usage_daily_mv", "prod") == [
        "DROP VIEW IF EXISTS db.usage_daily_mv ON CLUSTER 'prod'"
    ]


def test_every_migration_has_a_cluster_rendering():
    statements = plan("pulse", "prod")
    assert not [s for s in statements if "ON CLUSTER 'prod'" not in s]
    assert sum("ENGINE = Distributed(" in s for s in statements) == sum(
        "ENGINE = Replicated" in s for s in statements
    )


def test_cluster_names_are_checked():
    with pytest.raises(ValueError):
        render("CREATE DATABASE IF NOT EXISTS db", "x'; DROP TABLE y; --")
