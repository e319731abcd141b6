"""Versioned DDL: numbered SQL files in ``sinks/schema/migrations``, applied once and recorded.

Files are ``NNN_name.sql`` with ``{database}`` for the target database and statements separated
by ``;`` at line end. Each applied file is recorded with its checksum in
``<database>.schema_migrations``; re-running applies only what is new, and an applied file that
was edited afterwards is an error (write a new migration instead).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import call
from sinks.errors import MigrationError
from sinks.schema import cluster as cluster_ddl

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, database: str) -> list[str]:
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        rendered = body.replace("{database}", database)
        return [s.strip() for s in re.split(r";\s*$", rendered, flags=re.M) if s.strip()]


def load(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migrations are named NNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return migrations


def applied(client: Client, database: str) -> dict[int, str]:
    rows = call(
        "reading migrations",
        client.query,
        f"SELECT version, checksum FROM {database}.schema_migrations",
    ).result_rows
    return {int(v): c for v, c in rows}


def rendered(statement: str, cluster: str | None) -> list[str]:
    """A statement as run: itself on one node, its ``ON CLUSTER`` rendering in cluster mode."""
    return cluster_ddl.render(statement, cluster) if cluster else [statement]


def bootstrap_statements(database: str) -> list[str]:
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY version",
    ]


def plan(database: str, cluster: str | None = None) -> list[str]:
    """Every statement a fresh database gets, as rendered for ``cluster`` (or one node)."""
    statements = bootstrap_statements(database)
    for migration in load():
        statements += migration.statements(database)
    return [out for s in statements for out in rendered(s, cluster)]


def migrate(
    client: Client,
    database: str,
    migrations: list[Migration] | None = None,
    cluster: str | None = None,
) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date).
    With ``cluster``, every statement runs ``ON CLUSTER`` with replicated/distributed tables."""
    migrations = load() if migrations is None else migrations
    for statement in bootstrap_statements(database):
        for each in rendered(statement, cluster):
            call("creating the migrations table", client.command, each)
    done = applied(client, database)
    names = []
    for migration in migrations:
        label = f"{migration.version:03d}_{migration.name}"
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise MigrationError(f"{label} was edited after it was applied")
            continue
        for statement in migration.statements(database):
            for each in rendered(statement, cluster):
                call(f"applying {label}", client.command, each)
        call(
            f"recording {label}",
            client.insert,
            f"{database}.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        names.append(label)
    return names
