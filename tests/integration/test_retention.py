"""Retention against the real engines: chDB's tables drop rows past their bound at the next merge
and keep the rest, when the bound is set, shortened or removed; Kafka's event topics take the
same bound as ``retention.ms``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType

from sinks import dead_letter_rows
from sinks.schema.migrate import migrate
from sinks.schema.retention import BOUNDS, apply_retention
from streams.kafka.topics import apply_retention as apply_topic_retention
from streams.kafka.topics import ensure_topics, event_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings

from .conftest import wait_for

NOW = datetime.now(UTC).replace(microsecond=0)
AGES = (5, 40, 100)  # days


def dead_letter(client, database: str, age: int, offset: int = 0) -> None:
    at_ms = int((NOW - timedelta(days=age)).timestamp() * 1000)
    row = dead_letter_rows.row(key=b"k", value=b"v", headers=[], timestamp_ms=at_ms, partition=0,
                               offset=offset or age)  # fmt: skip
    client.insert(f"{database}.dead_letters", [[row[c] for c in dead_letter_rows.COLUMNS]],
                  column_names=list(dead_letter_rows.COLUMNS))  # fmt: skip


def seed(client, database: str) -> None:
    for age in AGES:
        dead_letter(client, database, age)
        at = (NOW - timedelta(days=age)).strftime("%Y-%m-%d %H:%M:%S")
        client.command(
            f"INSERT INTO {database}.events (event_id, event_time, received_at, instance_id, "
            "frontend_system, session_id, user_id, plugin_id, extension, action, subject, "
            "is_page_view, source_partition, source_offset) SELECT generateUUIDv4(), "
            f"toDateTime64('{at}', 3), toDateTime64('{at}', 3), 'i', 'NEW', 's', 'u', 'catalog', "
            f"'x', 'click', '/', false, 0, number FROM numbers(10)"
        )


def ages(client, database: str, table: str, column: str) -> list[int]:
    """The ages (days) of the rows a table holds after a merge."""
    client.command(f"OPTIMIZE TABLE {database}.{table} FINAL")
    rows = client.query(
        f"SELECT DISTINCT dateDiff('day', toDate({column}), toDate({{now:DateTime}})) AS age "
        f"FROM {database}.{table} ORDER BY age",
        parameters={"now": NOW},
    ).result_rows
    return [age for (age,) in rows]


def test_tables_keep_rows_within_their_bound_as_it_changes(chdb_client, database):
    migrate(chdb_client, database)
    seed(chdb_client, database)
    events = lambda: ages(chdb_client, database, "events", "event_time")  # noqa: E731
    dead = lambda: ages(chdb_client, database, "dead_letters", "received_at")  # noqa: E731
    daily = lambda: ages(chdb_client, database, "usage_daily", "day")  # noqa: E731
    assert (events(), dead(), daily()) == ([5, 40, 100], [5], [5, 40, 100])  # dead letters: 30

    said = apply_retention(chdb_client, database, 60, 120)
    assert "events 60 days" in said and "usage_daily 120 days" in said
    dead_letter(chdb_client, database, 40, offset=1)  # within the events' bound, past 30 days
    assert (events(), dead(), daily()) == ([5, 40], [5, 40], [5, 40, 100])
    # Shorter: what is past the new bound goes, what is within stays; rollups keep theirs.
    apply_retention(chdb_client, database, 30, 120)
    assert (events(), dead(), daily()) == ([5], [5], [5, 40, 100])
    apply_retention(chdb_client, database, 30, 60)
    assert daily() == [5, 40]
    # The same bound again changes nothing (no statement: a TTL change rewrites the parts).
    mutations = "SELECT count() FROM system.mutations WHERE database = {db:String}"
    before = chdb_client.command(mutations, parameters={"db": database})
    apply_retention(chdb_client, database, 30, 60)
    assert chdb_client.command(mutations, parameters={"db": database}) == before
    # None: events kept forever, dead letters as their table's own default.
    assert "events forever" in apply_retention(chdb_client, database, 0, 0)
    engines = dict(chdb_client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
        parameters={"db": database},
    ).result_rows)  # fmt: skip
    assert " TTL " not in engines["events"] and " TTL " not in engines["usage_daily"]
    assert "toIntervalDay(30)" in engines["dead_letters"]
    assert {b.table for b in BOUNDS} <= set(engines)


def test_rollups_are_kept_at_least_as_long_as_events(chdb_client, database):
    migrate(chdb_client, database)
    for events, rollups in [(30, 10), (0, 10)]:
        with pytest.raises(ValueError, match="at least as long"):
            apply_retention(chdb_client, database, events, rollups)


def test_the_event_topics_keep_messages_as_long_as_the_events(pulse_env, broker):
    settings = KafkaSettings()
    admin = wait_for_broker(broker.bootstrap)
    ensure_topics(admin, pulse_topics(settings), 2)

    def retention() -> dict[str, tuple[str, bool]]:
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in pulse_topics(settings)]
        out = {}
        for resource, future in admin.describe_configs(resources).items():
            entry = future.result()["retention.ms"]
            out[resource.name] = (entry.value, entry.is_default)
        return out

    default = retention()[settings.topic_counts]
    settings.events_retention_days = 3
    assert apply_topic_retention(admin, settings).endswith("keep 3 days")
    # A config change reaches the brokers' metadata after the controller took it: poll.
    wanted = {t: (str(3 * 86_400_000), False) for t in event_topics(settings)}
    wait_for(lambda: {t: retention()[t] for t in wanted} == wanted, 120, "the retention set")
    assert retention()[settings.topic_counts] == default  # counts name nobody
    settings.events_retention_days = 0
    apply_topic_retention(admin, settings)
    wait_for(lambda: all(retention()[t] == default for t in wanted), 120, "the default back")
