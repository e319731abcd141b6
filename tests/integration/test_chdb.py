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
