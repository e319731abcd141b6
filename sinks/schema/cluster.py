"""Cluster mode: the single-node migrations rendered for a ClickHouse cluster (pure).

Every MergeTree-family table ``X`` becomes ``X_local`` on every node (``ON CLUSTER``, a
``Replicated*`` engine whose ZooKeeper path names shard and table) plus a ``Distributed`` table
``X`` over it, so the sinks and analysts keep using the same names. Sharding keys are
deterministic, which a retried insert needs: its rows go to the same shards as the first
attempt and meet the same deduplication token there. Materialized views run on each node,
from local table to local table; plain views read the ``Distributed`` tables.
"""

from __future__ import annotations

import re

# Deterministic sharding keys: all versions of one counts key on one shard (FINAL works per
# shard), an event wherever its id hashes to.
SHARDING_KEYS = {
    "events": "cityHash64(event_id)",
    "counts_1m": (
        "cityHash64(window_start, instance_id, plugin_id, extension, action, source_partition)"
    ),
    "dead_letters": "cityHash64(dlq_partition, dlq_offset)",
    "sink_intents": "cityHash64(target, topic, partition)",
    "usage_hourly": "cityHash64(hour, instance_id, frontend_system, plugin_id, extension, action)",
    "usage_daily": "cityHash64(day, instance_id, frontend_system, plugin_id, extension, action)",
    "group_members": "cityHash64(ref)",  # a group's snapshots replace each other on one shard
    "erasures": "cityHash64(erasure_id)",  # an erasure's stages replace each other on one shard
    "usage_hourly_by_group": (
        "cityHash64(hour, group_ref, instance_id, frontend_system, plugin_id, extension, action)"
    ),
    "usage_daily_by_group": (
        "cityHash64(day, group_ref, instance_id, frontend_system, plugin_id, extension, action)"
    ),
    "schema_migrations": "version",
}

_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<db>\w+)\.(?P<table>\w+)\s*\n?\(", re.IGNORECASE
)
_ENGINE = re.compile(r"ENGINE\s*=\s*(?P<engine>\w*MergeTree)(?:\((?P<args>[^)]*)\))?")
_CREATE_MV = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<db>\w+)\.(?P<view>\w+) "
    r"TO (?P=db)\.(?P<target>\w+) AS",
    re.IGNORECASE,
)
_CREATE_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS (?P<db>\w+)\.(?P<view>\w+) AS", re.I)
_ALTER = re.compile(r"^ALTER TABLE (?P<db>\w+)\.(?P<table>\w+)\s", re.IGNORECASE)
_DROP_VIEW = re.compile(r"^DROP VIEW IF EXISTS \w+\.\w+$", re.IGNORECASE)
_SORTING_KEY = re.compile(r",\s*MODIFY ORDER BY \([^)]*\)", re.IGNORECASE)


def _on(cluster: str) -> str:
    return f"ON CLUSTER '{cluster}'"


def render(statement: str, cluster: str) -> list[str]:
    """One single-node statement as the statements of cluster mode."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", cluster):
        raise ValueError(f"not a cluster name: {cluster!r}")
    text = statement.strip()
    if match := _CREATE_TABLE.match(text):
        return _table(text, match["db"], match["table"], cluster)
    if match := _CREATE_MV.match(text):
        db, view, target = match["db"], match["view"], match["target"]
        head = (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view} {_on(cluster)} "
            f"TO {db}.{target}_local AS"
        )
        body = _local_sources(text[match.end() :], db)
        return [head + body]
    if match := _CREATE_VIEW.match(text):
        db, view = match["db"], match["view"]
        return [f"CREATE VIEW IF NOT EXISTS {db}.{view} {_on(cluster)} AS{text[match.end() :]}"]
    if match := _ALTER.match(text):
        db, table, rest = match["db"], match["table"], text[match.end() :]
        rest = rest.replace(
            "non_replicated_deduplication_window", "replicated_deduplication_window"
        )
        local = f"ALTER TABLE {db}.{table}_local {_on(cluster)} {rest}"
        if re.match(r"\s*(ADD|DROP|MODIFY|RENAME) COLUMN", rest, re.IGNORECASE):
            # The Distributed table takes the columns; its sorting key is the local table's.
            columns = _SORTING_KEY.sub("", rest)
            return [local, f"ALTER TABLE {db}.{table} {_on(cluster)} {columns}"]
        return [local]  # settings, TTL: storage only
    if match := _DROP_VIEW.match(text):
        return [f"{text} {_on(cluster)}"]
    if re.match(r"^CREATE DATABASE", text, re.IGNORECASE):
        return [f"{text} {_on(cluster)}"]
    raise ValueError(f"no cluster rendering for: {text[:80]}")


def _table(text: str, db: str, table: str, cluster: str) -> list[str]:
    engine = _ENGINE.search(text)
    if engine is None:
        raise ValueError(f"{db}.{table}: not a MergeTree-family table")
    args = f", {engine['args']}" if engine["args"] else ""
    replicated = (
        f"ENGINE = Replicated{engine['engine']}"
        f"('/clickhouse/tables/{{shard}}/{db}/{table}_local', '{{replica}}'{args})"
    )
    local = (
        f"CREATE TABLE IF NOT EXISTS {db}.{table}_local {_on(cluster)}\n("
        + text[_CREATE_TABLE.match(text).end() : engine.start()]
        + replicated
        + text[engine.end() :]
    )
    local = local.replace("non_replicated_deduplication_window", "replicated_deduplication_window")
    key = SHARDING_KEYS.get(table)
    if key is None:
        raise ValueError(f"{db}.{table}: no sharding key in cluster mode")
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {db}.{table} {_on(cluster)} AS {db}.{table}_local "
        f"ENGINE = Distributed('{cluster}', '{db}', '{table}_local', {key})"
    )
    return [local, distributed]


def _local_sources(select: str, db: str) -> str:
    """A view's SELECT reading the local tables (FROM/JOIN db.x -> db.x_local)."""
    return re.sub(rf"\b(FROM|JOIN)\s+{db}\.(\w+)", rf"\1 {db}.\2_local", select)
