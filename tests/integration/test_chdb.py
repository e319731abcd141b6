"""Migrations and the read-only guard against the real chDB engine."""

from __future__ import annotations

import pytest

from sinks.errors import ClickHouseRejectedError, MigrationError
from sinks.query.guard import run_readonly
from sinks.schema.migrate import Migration, load, migrate


def test_migrate_is_idempotent_and_recorded(chdb_client, database):
    first = migrate(chdb_client, database)
    assert first == [f"{m.version:03d}_{m.name}" for m in load()]
    assert migrate(chdb_client, database) == []
    recorded = chdb_client.query(
        f"SELECT version FROM {database}.schema_migrations FINAL ORDER BY version"
    ).result_rows
    assert [v for (v,) in recorded] == [m.version for m in load()]
    tables = {r[0] for r in chdb_client.query(f"SHOW TABLES FROM {database}").result_rows}
    assert {"events", "counts_1m", "usage_1m", "schema_migrations"} <= tables


def test_an_edited_migration_is_refused(chdb_client, database):
    migrate(chdb_client, database)
    edited = load()
    edited[0] = Migration(edited[0].version, edited[0].name, edited[0].sql + "\n-- edited\n")
    with pytest.raises(MigrationError, match="edited"):
        migrate(chdb_client, database, edited)


def test_migrations_keep_rollups_exact_for_retried_inserts(chdb_client, database):
    """A sink's retried insert (the same deduplication token) reaches neither events nor the
    rollups twice, before and after a migration that rebuilds the rollups' views."""
    from sinks.worker.insert import INSERT_SETTINGS

    def insert(token: str, first: int) -> None:
        chdb_client.command(
            f"INSERT INTO {database}.events (event_id, event_time, received_at, instance_id, "
            "frontend_system, session_id, user_id, plugin_id, extension, action, subject, "
            "is_page_view, source_partition, source_offset) SELECT "
            "toUUID(concat('00000000-0000-0000-0000-', leftPad(toString(number), 12, '0'))), "
            "toDateTime64('2026-12-07 10:00:00', 3), now64(3), 'i', 'NEW', 's', 'u', 'catalog', "
            f"'x', 'click', '/', false, 0, number FROM numbers({first}, 100)",
            settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
        )

    def totals() -> list[int]:
        return [
            chdb_client.query(f"SELECT {sql}").result_rows[0][0]
            for sql in (f"count() FROM {database}.events",
                        f"sum(events) FROM {database}.usage_daily",
                        f"sum(events) FROM {database}.usage_hourly_by_group")
        ]  # fmt: skip

    migrate(chdb_client, database, [m for m in load() if m.version < 10])
    insert("t:0:0-99", 0)
    insert("t:0:0-99", 0)
    assert totals() == [100, 100, 100]
    assert migrate(chdb_client, database)[0] == "010_verified_identity"  # rebuilds the views
    insert("t:0:0-99", 0)  # the retry of a batch inserted before
    assert totals() == [100, 100, 100]
    insert("t:0:100-199", 100)
    insert("t:0:100-199", 100)
    assert totals() == [200, 200, 200]


@pytest.mark.parametrize(
    "sql",
    [
        "DROP DATABASE {db}",
        "SELECT 1; DROP DATABASE {db}",
        "INSERT INTO {db}.counts_1m (version) VALUES (1)",
        "/* SELECT */ TRUNCATE TABLE {db}.events",
        "SELECT 1 SETTINGS readonly = 0",
        "",
    ],
)
def test_readonly_guard_refuses_writes(chdb_client, database, sql):
    migrate(chdb_client, database)
    with pytest.raises(ClickHouseRejectedError):
        run_readonly(chdb_client, sql.format(db=database), "TabSeparated", database=database)
    assert chdb_client.command(f"EXISTS DATABASE {database}") == 1


def test_reading_queries_run_and_do_not_leak_readonly(chdb_client, database):
    migrate(chdb_client, database)
    out = run_readonly(
        chdb_client,
        f"-- how many?\nSELECT count() AS n FROM {database}.events FORMAT JSON",
        "TSV",
        database=database,
    )
    assert b'"n": 0' in out or b'"n":0' in out or b'"n": "0"' in out
    assert run_readonly(chdb_client, f"SHOW TABLES FROM {database}", "TSV", database=database)
    # A writer sharing the engine can still insert with its own per-call settings.
    chdb_client.insert(
        f"{database}.schema_migrations",
        [[999, "probe", "x"]],
        column_names=["version", "name", "checksum"],
        settings={"insert_deduplication_token": "probe"},
    )
