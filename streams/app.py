"""The faust stage: decode -> enrich -> forward, and event-time window counts.

Counts live in a changelog-backed table keyed per source partition (see ``windows``), so a
restarted or rebalanced worker recovers them and skips replayed events. Changed keys are emitted
as absolute counts on a timer, never on window close (faust closes windows on wall-clock time
and does not hand the aggregate to ``on_window_close``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from faust.types import EventT

from schemas import (
    ANALYTICS_EVENT,
    ENRICHED_EVENT,
    WINDOW_COUNT,
    Decoder,
    Encoder,
    SchemaError,
    default_catalog,
)
from streams import windows
from streams.dead_letters import STAGE_DECODE, dead_letter_headers
from streams.enrich import enrich
from streams.pseudonymize import Pseudonymizer
from streams.settings import WorkerSettings

log = logging.getLogger("pulse.streams")


class Stats:
    """Counters for the ledger (good out + dead letters = in); exported as metrics later."""

    def __init__(self) -> None:
        self.consumed = 0
        self.enriched = 0
        self.dead_letters = 0
        self.replayed = 0
        self.counts_emitted = 0


def create_app(settings: WorkerSettings) -> faust.App:
    catalog = default_catalog()
    decode = Decoder(catalog, ANALYTICS_EVENT)
    encode_enriched = Encoder(catalog.latest(ENRICHED_EVENT))
    encode_count = Encoder(catalog.latest(WINDOW_COUNT))
    pseudonymize = Pseudonymizer(settings.user_id_secret.get_secret_value().encode())
    size_ms = settings.window_seconds * 1000
    session_timeout = settings.kafka_session_timeout_s

    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{h}" for h in settings.kafka_bootstrap.split(",")],
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=max(session_timeout / 6, 0.5),
        broker_rebalance_timeout=max(session_timeout * 2, 10),
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_host=settings.web_bind,
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
    )
    raw_topic = app.topic(settings.topic_raw, key_type=bytes, value_type=bytes)
    enriched_topic = app.topic(settings.topic_enriched, key_type=bytes, value_type=bytes)
    counts_topic = app.topic(settings.topic_counts, key_type=bytes, value_type=bytes)
    dlq_topic = app.topic(settings.topic_dlq, key_type=bytes, value_type=bytes)
    table = app.Table(
        "window-counts",
        default=None,
        partitions=settings.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )
    stats = Stats()
    dirty: set[str] = set()
    app.pulse_stats = stats  # type: ignore[attr-defined]

    async def dead_letter(event: EventT, exc: SchemaError) -> None:
        msg = event.message
        headers = dead_letter_headers(
            list(msg.headers or []),
            stage=STAGE_DECODE,
            reason=exc.reason,
            detail=str(exc),
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
        )
        await dlq_topic.send(key=msg.key, value=msg.value, headers=headers)
        stats.dead_letters += 1
        log.warning("dead letter %s:%s@%s %s", msg.topic, msg.partition, msg.offset, exc.reason)

    @app.agent(raw_topic)
    async def process(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            msg = event.message
            stats.consumed += 1
            try:
                raw = decode(msg.value or b"")
            except SchemaError as exc:
                await dead_letter(event, exc)
                continue
            enriched = enrich(
                raw,
                partition=msg.partition,
                offset=msg.offset,
                now_ms=int(time.time() * 1000),
                pseudonymize=pseudonymize,
            )
            await enriched_topic.send(key=msg.key, value=encode_enriched(enriched))
            stats.enriched += 1
            key = windows.key_for(enriched, size_ms).encode()
            state = windows.apply(table.get(key), msg.offset, enriched["value"])
            if state is None:
                stats.replayed += 1
            else:
                table[key] = state
            dirty.add(key)

    # After recovery the table may hold counts whose emission a crash cut short. Re-emitting is
    # idempotent and a stale key can never win (its version, a source offset, is lower), so
    # after every rebalance every key in the table is emitted once more.
    reemit_all = [True]

    @app.timer(interval=settings.emit_interval_s)
    async def emit_counts() -> None:
        if reemit_all[0] and app.tables.recovery.completed.is_set():
            reemit_all[0] = False
            dirty.update(table.keys())
        if not dirty:
            return
        keys = list(dirty)
        dirty.clear()
        now_ms = int(time.time() * 1000)
        for key in keys:
            state = table.get(key)
            if state is None:
                continue
            record = windows.to_record(windows.WindowKey.decode(key), state, size_ms, now_ms)
            await counts_topic.send(key=key.encode(), value=encode_count(record))
            stats.counts_emitted += 1

    @app.on_rebalance_complete.connect
    async def reemit_after_rebalance(sender: Any, **_: Any) -> None:
        reemit_all[0] = True

    return app
