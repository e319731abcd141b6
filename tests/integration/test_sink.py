"""The sink against the real broker and chDB: bad rows isolated, outages ridden out."""

from __future__ import annotations

import threading
import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from schemas import ENRICHED_EVENT, ENRICHED_EVENT_BATCH, Decoder, Encoder, default_catalog
from sinks.schema.migrate import migrate
from sinks.settings import SinkSettings
from sinks.tables import table_specs
from sinks.worker import TableSink
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings

from .conftest import wait_for
from .kafka_helpers import read_topic


def enriched(i: int, event_id: str | None = None) -> dict:
    return {
        "event_id": event_id or str(uuid.UUID(int=i + 1, version=4)),
        "event_time": 1_767_225_600_000 + i,
        "received_at": 1_767_225_600_000 + i,
        "lateness_ms": 0,
        "instance_id": "i",
        "frontend_system": "NEW",
        "session_id": f"s{i % 7}",
        "user_id": "",
        "plugin_id": "catalog",
        "extension": "page:catalog",
        "route_ref": "",
        "action": "navigate",
        "subject": f"/catalog/{i}",
        "value": None,
        "attributes": {"n": str(i)},
        "entity_ref": "",
        "search_types": "",
        "is_page_view": True,
        "source_partition": 0,
        "source_offset": i,
    }


def start_sink(chdb_client, database: str) -> tuple[TableSink, threading.Thread]:
    settings = SinkSettings(database=database, batch_rows=50)
    sink = TableSink(table_specs(settings)["events"], settings, chdb_client)
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    return sink, thread


def publish(broker, topic: str, values: list[bytes]) -> None:
    producer = EventProducer(broker.bootstrap, topic)
    for n, value in enumerate(values):
        producer.send_raw(f"s{n % 7}".encode(), value)
    producer.flush()


def committed(broker, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in range(4)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


def test_bad_rows_go_to_the_dead_letter_topic_alone(pulse_env, broker, chdb_client, database):
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    migrate(chdb_client, database)
    encode = Encoder(default_catalog().latest(ENRICHED_EVENT))
    values = [encode(enriched(i)) for i in range(300)]
    values[57] = encode(enriched(57, event_id="not-a-uuid"))  # ClickHouse cannot store it
    values[201] = b"\x00garbage"  # not Avro at all
    publish(broker, pulse_env["PULSE_TOPIC_ENRICHED"], values)

    sink, thread = start_sink(chdb_client, database)
    try:
        count = f"SELECT count() FROM {database}.events"
        wait_for(lambda: chdb_client.command(count) == 298, 60, "298 good rows")
        dlq = read_topic(broker.bootstrap, pulse_env["PULSE_TOPIC_DLQ"], 2)
        reasons = sorted(dict(m.headers())["pulse.error.reason"].decode() for m in dlq)
        assert reasons == ["clickhouse_bad_value", "unknown_schema"]
        assert sorted(m.value() for m in dlq) == sorted([values[57], values[201]])
        group = f"{pulse_env['PULSE_GROUP_PREFIX']}-events"
        topic = pulse_env["PULSE_TOPIC_ENRICHED"]
        wait_for(lambda: committed(broker, group, topic) == 300, 20, "all 300 offsets committed")
    finally:
        sink.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert chdb_client.command(f"SELECT uniqExact(event_id) FROM {database}.events") == 298


def test_a_bad_row_of_an_envelope_goes_alone(pulse_env, broker, chdb_client, database):
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    migrate(chdb_client, database)
    encode_batch = Encoder(default_catalog().latest(ENRICHED_EVENT_BATCH))
    rows = [enriched(i) for i in range(40)]
    rows[13] = enriched(13, event_id="not-a-uuid")
    values = [encode_batch({"events": rows[i : i + 20]}) for i in (0, 20)]
    publish(broker, pulse_env["PULSE_TOPIC_ENRICHED"], values)

    sink, thread = start_sink(chdb_client, database)
    try:
        count = f"SELECT count() FROM {database}.events"
        wait_for(lambda: chdb_client.command(count) == 39, 60, "39 good rows")
        [dead] = read_topic(broker.bootstrap, pulse_env["PULSE_TOPIC_DLQ"], 1)
        headers = dict(dead.headers())
        assert headers["pulse.source.batch_index"] == b"13"
        assert headers["pulse.error.stage"] == b"sink:events"
        assert Decoder(default_catalog(), ENRICHED_EVENT)(dead.value())["event_id"] == "not-a-uuid"
    finally:
        sink.stop()
        thread.join(30)


def test_outage_keeps_the_batch_and_commits_nothing_until_it_lands(
    pulse_env, broker, chdb_client, database
):
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    migrate(chdb_client, database)
    chdb_client.command(f"DETACH TABLE {database}.events")
    encode = Encoder(default_catalog().latest(ENRICHED_EVENT))
    publish(broker, pulse_env["PULSE_TOPIC_ENRICHED"], [encode(enriched(i)) for i in range(120)])
    group = f"{pulse_env['PULSE_GROUP_PREFIX']}-events"
    topic = pulse_env["PULSE_TOPIC_ENRICHED"]

    sink, thread = start_sink(chdb_client, database)
    try:
        wait_for(lambda: sink.stats.retries >= 3, 60, "the sink to retry during the outage")
        assert committed(broker, group, topic) == 0
        time.sleep(0.5)
        chdb_client.command(f"ATTACH TABLE {database}.events")
        count = f"SELECT count() FROM {database}.events"
        wait_for(lambda: chdb_client.command(count) == 120, 60, "120 rows after the outage")
        wait_for(lambda: committed(broker, group, topic) == 120, 20, "offsets after the insert")
    finally:
        sink.stop()
        thread.join(30)
    assert chdb_client.command(f"SELECT count() FROM {database}.events") == 120


def test_an_older_writers_events_take_the_new_columns_defaults(
    pulse_env, broker, chdb_client, database
):
    """Messages written before a schema version added fields (still in the topic during an
    upgrade) are handed to ClickHouse as they are, the newer columns taking their defaults,
    not decoded in Python."""
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    migrate(chdb_client, database)
    catalog = default_catalog()
    v1, v2, v3 = catalog.versions(ENRICHED_EVENT)[:3]
    batch_v1, batch_v2 = catalog.versions(ENRICHED_EVENT_BATCH)[:2]
    groups = ["group:default/acme", "group:default/web"]
    values = [
        Encoder(v1)(enriched(0)),
        Encoder(v2)({**enriched(1), "plugin_known": True, "plugin_title": "Catalog"}),
        Encoder(batch_v1)({"events": [enriched(2), enriched(3)]}),
        Encoder(v3)({**enriched(4), "groups": groups}),
        Encoder(batch_v2)({"events": [{**enriched(5), "groups": groups}]}),
    ]
    publish(broker, pulse_env["PULSE_TOPIC_ENRICHED"], values)
    sink, thread = start_sink(chdb_client, database)
    try:
        count = f"SELECT count() FROM {database}.events"
        wait_for(lambda: chdb_client.command(count) == 6, 60, "6 rows")
    finally:
        sink.stop()
        thread.join(30)
    rows = chdb_client.query(
        f"SELECT source_offset, plugin_known, plugin_title, groups FROM {database}.events "
        "ORDER BY source_offset"
    ).result_rows
    assert rows == [
        (0, False, "", []), (1, True, "Catalog", []), (2, False, "", []), (3, False, "", []),
        (4, False, "", groups), (5, False, "", groups),
    ]  # fmt: skip
    assert read_topic(broker.bootstrap, pulse_env["PULSE_TOPIC_DLQ"], 0, timeout_s=2) == []
    fallbacks = sink.metrics.registry.get_sample_value(
        "pulse_sink_decoded_messages_total", {"table": "events"}
    )
    assert fallbacks == 0
