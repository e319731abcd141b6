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

import asyncio
import logging
import time
from typing import Any

import faust
from aiohttp.web import Response
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, RequestTimedOutError
from aiokafka.protocol.metadata import MetadataRequest
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import EventT, StreamT
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from streams.errors import StreamsError
from streams.job.enrich import PluginLookup, no_plugins
from streams.job.processor import Processor
from streams.metrics import StreamsMetrics
from streams.settings import WorkerSettings

log = logging.getLogger("pulse.streams")
GAP_PATIENCE_S = 30.0
SEEK_RETRY_S = 2.0
STALL_S = 5.0  # an owned partition with unread messages and nothing delivered this long
RECOVERY_STALL_S = 60.0  # table recovery with no changelog record read this long
RECOVERY_RESEEK_S = 10.0  # ...and its stuck partitions are sought again this often
RAW = faust.Schema(key_serializer="raw", value_serializer="raw")


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def _highwaters(self, partitions: Any) -> Any:
        # Under exactly-once faust takes each changelog's end from the last *fetch* response,
        # which a partition not fetched since its assignment does not have yet: recovery then
        # took -1 as the end, and crashed on its consistency check or, without the check,
        # restored nothing, so counts came up short (test_rebalance_crash_duplicates_and_catalog
        # [join-then-sigkill-exactly-once]). A ListOffsets request with the consumer's
        # read_committed isolation answers the last stable offset itself.
        return await self._ensure_consumer().end_offsets(partitions)


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        # faust forgets the acknowledged offsets of revoked partitions (all of them, under the
        # eager protocol) *before* its revoke handler waits for in-flight messages and commits,
        # so that commit found nothing to commit: what was acknowledged since the last timer
        # commit was processed again by the next owner, and under exactly-once the open
        # transactions were neither committed nor ended (the kept ones carried on, the others
        # were abandoned for the next owner to abort), so a worker killed after a rebalance
        # lost counts (test_rebalance_crash_duplicates_and_catalog
        # [join-then-sigkill-exactly-once]). Same steps as faust's, in the order that commits.
        if self._active_partitions is not None:
            self._active_partitions.difference_update(revoked)
        self._paused_partitions.difference_update(revoked)
        await self._on_partitions_revoked(revoked)
        for tp in revoked:
            for offsets in (self._gap, self._acked, self._acked_index, self._read_offset,
                            self._committed_offset):  # fmt: skip
                offsets.pop(tp, None)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer

    async def _get_controller_node(self, owner: Any, client: Any, timeout: int = 30000) -> Any:
        # faust sends a metadata request to the first broker it knows of and its CreateTopics
        # to the controller named in the answer; a worker started while a node was down (and
        # not yet fenced) failed either request with NodeNotReadyError and exited
        # (test_broker.py::test_a_worker_starts_while_a_node_of_three_is_down). On KRaft any
        # broker forwards CreateTopics to the active controller, and the "controller" a broker
        # names is a random broker, maybe the dead one: use the first broker that answers.
        failure: Exception = NodeNotReadyError("no broker in the cluster metadata")
        for broker in client.cluster.brokers():
            try:
                answer = await owner.wait(
                    client.send(broker.nodeId, MetadataRequest([])), timeout=timeout / 1000
                )
            except (KafkaConnectionError, NodeNotReadyError, RequestTimedOutError) as exc:
                failure = exc
                continue
            return None if answer.stopped else broker.nodeId
        raise failure


def create_app(settings: WorkerSettings, plugins: PluginLookup = no_plugins) -> faust.App:
    """The worker app. ``plugins`` looks plugin metadata up by id (a started CatalogReader)."""
    session_timeout = settings.kafka_session_timeout_s

    class App(faust.App):
        def _new_transport(self) -> Any:
            return Transport(self.conf.broker_consumer, self)

        async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
            # faust waits here, at a revoke and at shutdown, until every message handed to the
            # agent is acknowledged; only a flush acknowledges, and the flush timer is stopped
            # by then at shutdown, so a SIGTERM waited forever (until SIGKILL). Flush while
            # waiting: what the agent still processes is persisted and acknowledged too.
            waiter = asyncio.ensure_future(super()._consumer_wait_empty(consumer, logger))
            while not waiter.done():
                if streams:
                    await flush()
                await asyncio.wait([waiter], timeout=0.2)
            await waiter

    app = App(
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
        stream_buffer_maxsize=8192,
        # No standbys: each would replay every other worker's changelogs into memory all the
        # time, for a recovery that takes seconds from the changelog itself.
        table_standby_replicas=0,
    )
    raw_topic = app.topic(settings.topic_raw, schema=RAW)
    counts_table = app.Table(
        "window-counts",
        default=None,
        partitions=settings.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )
    dedup_table = app.Table(
        "dedup-ids",
        default=None,
        partitions=settings.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )
    metrics = StreamsMetrics()
    if settings.faust_metrics:
        # faust's own sensors (consumer, producer, tables, rebalances) in the same registry.
        setup_prometheus_sensors(
            app, "/metrics/faust", registry=metrics.registry, name_prefix="pulse_streams_faust"
        )
    processor = Processor(
        secret=settings.user_id_secret.get_secret_value().encode(),
        limits=settings.limits(),
        window_ms=settings.window_seconds * 1000,
        retention_ms=settings.window_retention_s * 1000,
        dedup_horizon_ms=settings.dedup_horizon_s * 1000,
        dedup_max_ids=settings.dedup_max_ids,
        counts_store=counts_table.data,
        plugins=plugins,
        metrics=metrics,
    )
    pending: list[EventT] = []
    deliveries: list[asyncio.Future] = []
    streams: list[StreamT] = []
    flush_lock = asyncio.Lock()
    # After start and every rebalance: rebuild in-memory indexes from the recovered tables.
    # Done in the agent loop, because faust resumes the stream only after recovery.
    reload_state = [True]
    app.pulse_processor = processor  # type: ignore[attr-defined]

    def owned_partitions() -> set[int]:
        raw_name = raw_topic.get_topic_name()
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == raw_name}

    partition_counts: dict[str, int] = {}

    async def send(
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        source_partition: int = 0,
    ) -> None:
        # Straight to the producer, as faust's Topic.publish_message does after wrapping the
        # message in futures and sensor calls this worker does not use (5% of its time). The
        # delivery future is kept, not awaited: a flush checks every delivery at once.
        producer = app.producer
        await producer.maybe_start()
        partition = None
        if key is None:
            # Keyless messages would go to a random partition; a successor re-sending one must
            # hit the partition of the first copy, where the sink recognises repeats.
            if topic not in partition_counts:
                aio = producer._ensure_producer()  # faust's Producer does not expose metadata
                partition_counts[topic] = len(await aio.partitions_for(topic))
            partition = source_partition % partition_counts[topic]
        deliveries.append(
            await producer.send(
                topic, key, value, partition, None, headers,
                transactional_id=transaction_of(source_partition),
            )
        )  # fmt: skip

    def transaction_of(source_partition: int) -> str | None:
        # Under exactly-once an output belongs to the transaction that commits its source
        # partition's offsets. faust's TransactionManager.send picks the transaction of the
        # *output* partition (and fails for a topic it does not consume), so a crash between
        # two transactions' commits kept offsets whose outputs were aborted
        # (test_rebalance_crash_duplicates_and_catalog[join-then-sigkill-exactly-once]).
        if not app.in_transaction:
            return None
        group = app.assignor.group_for_topic(raw_topic.get_topic_name())
        return f"{app.conf.id}-{group}-{source_partition}"

    async def delivered() -> bool:
        """Wait for every message sent so far; False (and the worker crashed) if one failed."""
        await app.producer.flush()
        sent = deliveries[:]
        deliveries.clear()
        return await settled(sent)

    async def settled(sent: list[asyncio.Future]) -> bool:
        """Wait for these deliveries; False (and the worker crashed) if one failed."""
        results = await asyncio.gather(*sent, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            # Nothing after this point may be persisted or acknowledged: the messages are
            # processed again by whoever owns their partitions next.
            log.critical(
                "%d of %d messages were not delivered: %r", len(failed), len(sent), failed[0]
            )
            await app.crash(failed[0])
            return False
        return True

    async def reload_after_recovery() -> None:
        owned = owned_partitions()
        processor.dedup.forget(processor.dedup.partitions() - owned)
        processor.counter.forget(set(processor.counter.watermark) - owned)
        loaded = processor.counter.reindex(owned)
        to_load = owned - processor.dedup.partitions()  # partitions new to this worker
        for key, payload in list(dedup_table.data.items()):
            p = int(str(key).split(":", 1)[0])
            if p in to_load and payload:
                processor.dedup.load(p, key, payload)
        # Counts whose emission a crash cut short: re-emitting is idempotent and a stale value
        # can never win (its version, a position, is lower), so emit every owned key again.
        # Not under exactly-once: emission commits with the state, and a transaction holding
        # only these (no offsets) would stay open, hiding later counts from read_committed
        # consumers, until the broker aborted it.
        if not app.in_transaction:
            for key, value in processor.count_records(owned):
                await send(settings.topic_counts, key, value, source_partition=int(key))
        log.info(
            "state loaded: %d window keys, %d dedup ids, partitions %s",
            loaded,
            processor.dedup.size,
            sorted(owned),
        )
        if settings.trace_flushes:
            per_partition: dict[int, int] = {}
            for bucket in list(processor.counter.store.keys()):
                p = int(str(bucket).split(":", 1)[0])
                per_partition[p] = per_partition.get(p, 0) + len(processor.counter.store[bucket])
            committed = {tp.partition: o for tp, o in app.consumer._committed_offset.items()}
            log.info("keys per partition %s; committed offsets %s", per_partition, committed)

    async def flush() -> None:
        async with flush_lock:
            started = time.perf_counter()
            batch = pending[:]
            pending.clear()
            result = processor.flush()  # synchronous snapshot of every change so far
            if not await delivered():  # 1. what was forwarded is delivered
                return
            changelog = [  # 2. state, once per changed bucket or chunk
                counts_table.send_changelog(p, bucket, states)
                for p, bucket, states in result.count_states
            ]
            changelog += [
                dedup_table.send_changelog(p, key, payload)
                for p, key, payload in result.dedup_chunks
            ]
            # Delivered before any offset is released: faust's own flush before a commit gives
            # up on its send buffer after 0.1 s without a delivery, so a commit could precede
            # the state it depends on, and a crash then recovered counts that missed events.
            if not await settled(changelog):
                return
            for key, value in result.count_records:  # 3. absolute counts
                await send(settings.topic_counts, key, value, source_partition=int(key))
            metrics.counts_emitted.inc(len(result.count_records))  # messages
            for event in batch:  # 4. now the offsets may be committed
                await streams[0].ack(event)
            if batch and settings.trace_flushes:  # what a crash analysis needs
                acked: dict[int, list[int]] = {}
                for event in batch:
                    acked.setdefault(event.message.partition, []).append(event.message.offset)
                written: dict[int, int] = {}
                for p, _, _ in result.count_states:
                    written[p] = written.get(p, 0) + 1
                log.info(
                    "flushed: buckets per partition %s; acked offsets %s",
                    written,
                    {p: (min(o), max(o)) for p, o in sorted(acked.items())},
                )
            metrics.catalog_plugins.set(len(plugins) if hasattr(plugins, "__len__") else 0)
            metrics.flush.observe(time.perf_counter() - started)

    @app.agent(raw_topic)
    async def process(stream: StreamT[Any]) -> None:
        streams[:] = [stream]
        async for event in stream.noack().events():
            msg = event.message
            if not await in_sequence(msg):
                continue  # faust skipped messages: re-read from where we are (see below)
            # Processing and sending are one step under the flush lock: a flush must never
            # persist an event's id (or count) before the event itself is in the producer.
            async with flush_lock:
                if reload_state[0]:
                    reload_state[0] = False
                    await reload_after_recovery()
                started = time.perf_counter()
                outcome = processor.process(
                    msg.key,
                    msg.value,
                    list(msg.headers or []),
                    msg.topic,
                    msg.partition,
                    msg.offset,
                )
                if outcome.enriched is not None:
                    await send(
                        settings.topic_enriched,
                        msg.key,
                        outcome.enriched,
                        outcome.enriched_headers,
                        msg.partition,
                    )
                    metrics.events_out.labels(settings.topic_enriched).inc(outcome.events_out)
                for dead in outcome.dead_letters:
                    await send(
                        settings.topic_dlq, dead.key, dead.value, dead.headers, msg.partition
                    )
                metrics.processing.observe(time.perf_counter() - started)
                pending.append(event)
            if len(pending) >= settings.max_unflushed_messages:
                await flush()

    # The raw topic is neither compacted nor transactional, so offsets within a partition are
    # contiguous and a jump means messages were skipped. That happens with faust: at a
    # rebalance it drops fetched messages from the stream buffer, and its consumer can then
    # resume past them and count them as a "gap" it commits over (on Apache Kafka too:
    # tests/integration/test_streams_faults.py::test_rebalance_crash_duplicates_and_catalog
    # [join] loses runs of 3-4 offsets per partition without this guard). So each partition's
    # next offset is tracked (from the
    # committed position after an assignment). On a jump the agent seeks back and, until the
    # missing offset arrives, drops the messages faust had already fetched past it (they come
    # again, in order). A jump that outlasts GAP_PATIENCE_S is taken as real.
    next_offset: dict[Any, int] = {}
    seeking: dict[Any, tuple[int, float]] = {}
    last_seek: dict[Any, float] = {}
    last_arrival: dict[Any, float] = {}
    settled_at = [0.0]  # when the last rebalance completed

    async def in_sequence(msg: Any) -> bool:
        tp, offset = msg.tp, msg.offset
        last_arrival[tp] = time.monotonic()
        target = seeking.get(tp)
        if target is not None:
            wanted, since = target
            if offset > wanted and time.monotonic() - since < GAP_PATIENCE_S:
                return False  # fetched before the seek: it will be delivered again
            if offset >= wanted:
                del seeking[tp]
                last_seek.pop(tp, None)
                if offset > wanted:
                    log.error(
                        "offsets %s-%s of %s[%s] did not come back; continuing",
                        wanted,
                        offset - 1,
                        msg.topic,
                        msg.partition,
                    )
                next_offset[tp] = offset + 1
            return True  # below the target: an old message again, replay-safe
        expected = next_offset.get(tp)
        if expected is None:
            expected = app.consumer._committed_offset.get(tp)  # where faust's seek put us
        if expected is not None and offset > expected:
            seeking[tp] = (expected, time.monotonic())
            metrics.offset_gaps.inc()
            log.warning(
                "offsets %s-%s of %s[%s] were skipped by the consumer; re-reading",
                expected,
                offset - 1,
                msg.topic,
                msg.partition,
            )
            await app.consumer.seek(tp, expected)
            last_seek[tp] = time.monotonic()
            return False
        next_offset[tp] = max(offset + 1, expected or 0)
        return True

    @app.timer(interval=settings.flush_interval_s)
    async def flush_on_timer() -> None:
        # A seek issued while faust was still settling a rebalance was seen to be lost, and the
        # agent cannot act while nothing arrives: repeat seeks that brought nothing back.
        now = time.monotonic()
        for tp, (wanted, _) in list(seeking.items()):
            if now - last_seek.get(tp, 0.0) > SEEK_RETRY_S:
                log.info("re-seeking %s[%s] to %s", tp.topic, tp.partition, wanted)
                await app.consumer.seek(tp, wanted)
                last_seek[tp] = now
        if streams and (pending or processor.counter.dirty_buckets):
            await flush()
        observe_lag()
        await unstall(now)
        await watch_recovery(now)

    recovery_watch: dict[str, Any] = {}

    async def watch_recovery(now: float) -> None:
        # faust's recovery was seen to wait forever for the changelog partitions it had just
        # sought, while /healthz still answered (test_rebalance_crash_duplicates_and_catalog,
        # about 1 run in 4; faust only logs "No event received for active tp"), as seeks issued
        # while a rebalance settles were seen to be lost for the raw topic. Partitions that make
        # no progress are sought again; a recovery still stuck after RECOVERY_STALL_S stops the
        # worker, so that the group hands its partitions on and an orchestrator restarts it.
        recovery = app.tables.recovery
        if not recovery.in_recovery:
            recovery_watch.clear()
            return
        offsets = dict(recovery.active_offsets)
        if recovery_watch.get("offsets") != offsets:
            recovery_watch.update(offsets=offsets, since=now, sought=now)
            return
        read = {tp: -1 if offsets.get(tp) is None else offsets[tp] for tp in offsets}
        behind = {
            tp: at
            for tp, end in recovery.active_highwaters.items()
            if end is not None and (at := read.get(tp, -1)) < end - 1
        }
        if now - recovery_watch["since"] > RECOVERY_STALL_S:
            log.error(
                "table recovery made no progress for %.0f s (changelog positions %s); stopping "
                "so that the partitions move on",
                RECOVERY_STALL_S, {f"{tp.topic}[{tp.partition}]": o for tp, o in behind.items()},
            )  # fmt: skip
            await app.crash(StreamsError("table recovery stalled"))
        elif now - recovery_watch["sought"] > RECOVERY_RESEEK_S:
            recovery_watch["sought"] = now
            for tp, offset in behind.items():
                at = offset + 1  # the next record; 0 for a partition read from the start
                log.warning("recovery of %s[%s] is stuck; seeking it to %s", tp.topic,
                            tp.partition, at)  # fmt: skip
                await app.consumer.seek(tp, at)

    async def unstall(now: float) -> None:
        # After a rebalance faust was seen to deliver nothing more from a kept partition while
        # messages waited past the position this worker had reached: it had taken the offsets
        # dropped from its stream buffer as a gap and moved on, and with no later message the
        # guard above cannot see the jump (test_rebalance_crash_duplicates_and_catalog lost
        # 50-offset runs of one partition). Such a partition is re-read from where we are.
        # Never while faust recovers the tables: it pauses the partitions until the state is
        # restored, and events processed before that would count against a partial state.
        settling = now - settled_at[0] < STALL_S
        if settling or app.rebalancing or not app.tables.recovery.completed.is_set():
            return
        raw_name = raw_topic.get_topic_name()
        for tp in app.assignor.assigned_actives():
            expected = next_offset.get(tp)
            if tp.topic != raw_name or expected is None or tp in seeking:
                continue
            try:
                end = app.consumer.highwater(tp)
            except Exception:  # not fetched yet
                continue
            quiet = now - max(last_arrival.get(tp, 0.0), last_seek.get(tp, 0.0))
            if end is None or end <= expected or quiet < STALL_S:
                continue
            log.warning(
                "%s[%s] stalled at offset %s (end %s, paused %s, committed %s); re-reading",
                tp.topic, tp.partition, expected, end, tp in app.consumer._paused_partitions,
                app.consumer._committed_offset.get(tp),
            )  # fmt: skip
            metrics.offset_gaps.inc()
            app.consumer.resume_partitions({tp})
            await app.consumer.seek(tp, expected)
            last_seek[tp] = now

    def observe_lag() -> None:
        raw_name = raw_topic.get_topic_name()
        for tp in app.assignor.assigned_actives():
            if tp.topic != raw_name:
                continue
            try:
                end = app.consumer.highwater(tp)
            except Exception:  # not fetched yet: nothing to say
                continue
            position = next_offset.get(tp, app.consumer._committed_offset.get(tp))
            if end is not None and position is not None:
                metrics.lag.labels(str(tp.partition)).set(max(end - position, 0))

    @app.on_partitions_revoked.connect
    async def flush_before_revoke(sender: Any, revoked: Any, **_: Any) -> None:
        # faust waits for every in-flight message to be acknowledged before this signal, so the
        # timer's flush has already persisted our state; this catches what arrived since. Not
        # under exactly-once: faust has committed and ended the transactions by now, and an
        # output sent outside one would fail.
        if streams and not app.in_transaction:
            await flush()
        reload_state[0] = True

    @app.on_rebalance_complete.connect
    async def reload_after_rebalance(sender: Any, **_: Any) -> None:
        metrics.rebalances.inc()
        metrics.lag.clear()  # partitions may have moved; the timer sets the owned ones again
        reload_state[0] = True
        # A partition kept through the rebalance resumes where this worker stopped: everything
        # processed was flushed and acknowledged at the revoke. That position must be kept,
        # not taken from faust's committed offsets: those were still empty when the first
        # message after an assignment arrived, and messages of a batch fetched before the
        # rebalance had been dropped, so the guard had nothing to compare with and runs of
        # 3-50 offsets were lost (test_rebalance_crash_duplicates_and_catalog[join]).
        owned = set(app.assignor.assigned_actives())
        for tp in list(next_offset):
            if tp not in owned:
                del next_offset[tp]
        seeking.clear()
        last_seek.clear()
        settled_at[0] = time.monotonic()

    @app.page("/healthz")
    async def liveness(web: Any, request: Any) -> Response:
        return Response(text="ok\n")  # the event loop answers: the process is alive

    @app.page("/readyz")
    async def readiness(web: Any, request: Any) -> Response:
        # Ready once state is recovered and the streams run; not while a rebalance is under way.
        recovered = app.tables.recovery.completed.is_set()
        ready = recovered and not app.rebalancing and bool(streams)
        return Response(text="ready\n" if ready else "not ready\n", status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Response:
        return Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    return app
