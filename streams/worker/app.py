"""The faust adapter: consume raw messages, run the ``Processor``, persist and acknowledge.

Messages are not acknowledged as they are processed (``noack``): window counts and seen event
ids change in memory, and once per flush interval (or past ``max_unflushed_messages``, or when
partitions are revoked) a flush, in this order,
1. waits until every enriched event and dead letter sent so far is delivered,
2. writes each changed window key and each new de-duplication chunk to its changelog once,
3. emits the changed keys' absolute counts to the counts topic,
4. acknowledges the messages, so faust may commit their offsets.
A crash anywhere replays from the last commit: replayed events are skipped by their position
(counts) and their id (forwarding), so neither counts nor enriched events double. Counts are
emitted on this timer, never on window close (faust closes windows on wall-clock time and does
not hand the aggregate to ``on_window_close``).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import StreamT

from streams.job.enrich import PeopleLookup, PluginLookup, no_people, no_plugins
from streams.job.processor import Erased, Processor, no_erasures
from streams.metrics import StreamsMetrics
from streams.settings import WorkerSettings
from streams.worker.faust_adapter import WorkerApp
from streams.worker.flush import Flush
from streams.worker.intake import Intake
from streams.worker.liveness import Liveness
from streams.worker.output import Output
from streams.worker.pages import add_pages
from streams.worker.recovery import RecoveryWatch, StateReload
from streams.worker.sequence import SequenceGuard, StallWatch

RAW = faust.Schema(key_serializer="raw", value_serializer="raw")
JSON = faust.Schema(key_serializer="json", value_serializer="json")


def create_app(
    settings: WorkerSettings,
    plugins: PluginLookup = no_plugins,
    people: PeopleLookup = no_people,
    erased: Erased = no_erasures,
) -> faust.App:
    """The worker app. ``plugins`` looks plugin metadata up by id, ``people`` a user's groups
    by keyed id, ``erased`` holds erased people's keyed ids (started TopicTables)."""
    return Worker(settings, (plugins, people, erased)).app


class Worker:
    """One faust app and the parts it runs: intake, the ordered flush, state reload and the
    recovery watch, the sequence guard, the web pages."""

    def __init__(
        self, settings: WorkerSettings, lookups: tuple[PluginLookup, PeopleLookup, Erased]
    ) -> None:
        self.app = app = _faust_app(settings)
        self._raw = app.topic(settings.topic_raw, schema=RAW)
        table = functools.partial(app.Table, default=None, partitions=settings.partitions)
        counts, dedup = table("window-counts", schema=JSON), table("dedup-ids", schema=JSON)
        self.metrics = metrics = StreamsMetrics()
        if settings.faust_metrics:  # faust's own sensors, in the same registry
            setup_prometheus_sensors(app, "/metrics/faust", metrics.registry, "pulse_streams_faust")
        processor = _processor(settings, counts.data, lookups, metrics)
        output = Output(app, raw_name := self._raw.get_topic_name)
        self.flush = Flush(
            processor, output, (counts, dedup), settings.topic_counts, metrics,
            settings.flush_deadline_s, settings.trace_flushes,
        )  # fmt: skip
        self.reload = StateReload(
            app, processor, dedup, output, settings.topic_counts, self._owned,
            settings.trace_flushes,
        )  # fmt: skip
        self.guard = SequenceGuard(app, raw_name, metrics)
        self.stalls = StallWatch(self.guard)
        self.watch = RecoveryWatch(app)
        self.intake = Intake(settings, processor, self.guard, self.reload, output, self.flush,
                             metrics)  # fmt: skip
        self._dirty = lambda: bool(processor.counter.dirty_buckets)
        self._catalogs = dict(zip(("plugins", "people", "erasures"), lookups, strict=True))
        app.flush_while_waiting = self._flush_if_running
        self._register(settings.flush_interval_s)
        liveness = Liveness(self.flush, self.stalls, settings.flush_deadline_s, metrics)
        add_pages(app, metrics, lambda: self.flush.stream is not None, liveness.problems)

    def _owned(self) -> set[int]:
        raw = self._raw.get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == raw}

    async def _flush_if_running(self) -> None:
        if self.flush.stream is not None:
            await self.flush()

    def _register(self, flush_interval_s: float) -> None:
        app = self.app

        @app.agent(self._raw)
        async def process(stream: StreamT[Any]) -> None:
            self.flush.stream = stream
            async for event in stream.noack().events():
                await self.intake(event)

        @app.timer(interval=flush_interval_s)
        async def flush_on_timer() -> None:
            now = time.monotonic()
            await self.guard.reseek(now)
            if self.flush.stream is not None and (self.flush.unflushed or self._dirty()):
                await self.flush()
            self.stalls.observe_lag(now)
            _catalog_sizes(self.metrics, self._catalogs)
            await self.stalls.unstall(now)
            await self.watch.check(now)

        @app.on_partitions_revoked.connect
        async def flush_before_revoke(sender: Any, revoked: Any, **_: Any) -> None:
            # faust waits for every in-flight message to be acknowledged before this signal, so
            # the timer's flush has already persisted our state; this catches what arrived
            # since. Not under exactly-once: faust has committed and ended the transactions by
            # now, and an output sent outside one would fail.
            if self.flush.stream is not None and not app.in_transaction:
                await self.flush()
            self.reload.needed = True

        @app.on_rebalance_complete.connect
        async def reload_after_rebalance(sender: Any, **_: Any) -> None:
            self.metrics.rebalances.inc()
            self.metrics.lag.clear()  # partitions may have moved; the timer sets the owned ones
            self.reload.needed = True
            self.guard.rebalanced()


def _catalog_sizes(metrics: StreamsMetrics, catalogs: dict[str, Any]) -> None:
    """The catalog tables' sizes (their own threads follow the topics)."""
    for name, table in catalogs.items():
        metrics.catalog.labels(name).set(len(table) if hasattr(table, "__len__") else 0)


def _faust_app(settings: WorkerSettings) -> WorkerApp:
    session_timeout = settings.kafka_session_timeout_s
    app = WorkerApp(
        settings.app_id,
        broker=[f"kafka://{h}" for h in settings.kafka_bootstrap.split(",")],
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=settings.processing_guarantee,
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=max(session_timeout / 6, 0.5),
        broker_rebalance_timeout=max(session_timeout * 2, 10),
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_host=settings.web_bind,
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        producer_max_batch_size=settings.producer_batch_bytes,
        producer_linger=settings.producer_linger_ms / 1000,
        # A batch not delivered within it fails (faust's default: 20 minutes), and the flush
        # waiting for it crashes the worker; the flush deadline bounds every other wait.
        producer_request_timeout=settings.flush_deadline_s / 2,
        stream_buffer_maxsize=8192,
        # No standbys: each would replay every other worker's changelogs into memory all the
        # time, for a recovery that takes seconds from the changelog itself.
        table_standby_replicas=0,
    )
    # The producer tracks the metadata of these from the start (see faust_adapter._Producer).
    app.produced_topics = (settings.topic_enriched, settings.topic_dlq, settings.topic_counts)
    app.wait_empty_deadline_s = settings.flush_deadline_s
    return app


def _processor(
    settings: WorkerSettings,
    counts_store: Any,
    lookups: tuple[PluginLookup, PeopleLookup, Erased],
    metrics: StreamsMetrics,
) -> Processor:
    return Processor(
        secret=settings.user_id_secret.get_secret_value().encode(),
        limits=settings.limits(),
        window_ms=settings.window_seconds * 1000,
        retention_ms=settings.window_retention_s * 1000,
        dedup_horizon_ms=settings.dedup_horizon_s * 1000,
        dedup_max_ids=settings.dedup_max_ids,
        counts_store=counts_store,
        plugins=lookups[0],
        people=lookups[1],
        erased=lookups[2],
        metrics=metrics,
    )
