import pytest

from sinks.errors import MigrationError
from sinks.schema.migrate import Migration, load


def test_shipped_migrations_are_numbered_and_render():
    migrations = load()
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    for migration in migrations:
        statements = migration.statements("analytics")
        assert statements
        assert all("{database}" not in s and "analytics." in s for s in statements)


def test_statements_split_on_semicolons_at_line_end_only():
    m = Migration(1, "x", "-- c;\nCREATE TABLE {database}.a (s String DEFAULT ';');\nSELECT 1;\n")
    assert m.statements("d") == ["CREATE TABLE d.a (s String DEFAULT ';')", "SELECT 1"]


def test_bad_file_names_are_refused(tmp_path):
    (tmp_path / "1_bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError):
        load(tmp_path)
