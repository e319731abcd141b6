"""A sink worker: one consumer group per table; consume, batch, insert, then commit.

Per flush, for each partition's run of messages (``batch.Run``):
1. record the run's offset range as an insert intent (``intents``),
2. insert it under the token ``topic:partition:first-last``: Avro messages are handed to
   ClickHouse as object containers, their bytes copied, not decoded (``schemas.container``);
   what cannot be passed through (another framing, a rejected container) is decoded here,
3. send dead letters and wait for them, then commit the offsets.
A killed sink leaves an intent at its partitions' committed offsets; the next owner rebuilds
exactly those runs, whose tokens make ClickHouse drop what was already inserted. A transient
ClickHouse failure keeps the run and retries with backoff (never committing past it); rows
ClickHouse rejects as bad data are isolated by halving and dead-lettered alone.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_delay,
    stop_any,
    stop_never,
    wait_exponential_jitter,
)

from schemas import Decoder, Encoder, SchemaError, default_catalog
from schemas.container import ContainerWriter, ItemSchemas, NotPassthroughError, block_of
from schemas.dead_letters import dead_letter_headers
from sinks import dead_letter_rows
from sinks.batch import Batch, Run
from sinks.clickhouse import call
from sinks.errors import ClickHouseRejectedError, ClickHouseUnavailableError, RebalanceError
from sinks.intents import Intents
from sinks.metrics import SinkMetrics
from sinks.repeats import RepeatFilter, identity
from sinks.settings import SinkSettings
from sinks.tables import TableSpec

log = logging.getLogger("pulse.sinks")

# Settings of every insert: a retried token is dropped in the table and in the rollup views;
# and no collapsing of equal sorting keys at insert time (ReplacingMergeTree's default), which
# nearly halved insert speed and is not needed: tokens keep repeats out, merges are the backstop.
# In cluster mode an insert into a Distributed table returns once the shards have it.
INSERT_SETTINGS = {
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "optimize_on_insert": 0,
    "distributed_foreground_insert": 1,
}


@dataclass
class SinkStats:
    consumed: int = 0
    rows_written: int = 0
    dead_letters: int = 0
    batches: int = 0
    retries: int = 0
    replays: int = 0
    repeats: int = 0


@dataclass
class Rows:
    """Rows decoded in Python, with where each came from (message, index in its envelope)."""

    records: list[dict[str, Any]]
    sources: list[tuple[Message, int | None]]


class TableSink:
    """Consumes ``spec.topic`` into ``spec.table`` until :meth:`stop` is called."""

    def __init__(
        self,
        spec: TableSpec,
        settings: SinkSettings,
        client: Client,
        metrics: SinkMetrics | None = None,
        insert_clients: list[Client] | None = None,
    ) -> None:
        """``insert_clients``: more connections for inserting partition runs side by side (one
        client runs one statement at a time; ``client`` is always one of them)."""
        self.spec = spec
        self.settings = settings
        self.client = client
        self._clients: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for each in [client, *(insert_clients or [])]:
            self._clients.put(each)
        self.stats = SinkStats()
        self.metrics = metrics or SinkMetrics()
        self._stop = threading.Event()
        self._stats_lock = threading.Lock()
        self._target = f"{settings.database}.{spec.table}"
        catalog = default_catalog()
        if spec.record is not None:
            names = [spec.record] + ([spec.batch] if spec.batch else [])
            self._decode = Decoder(catalog, names)
            self._encode_row = Encoder(catalog.latest(spec.record))
            self._items = ItemSchemas(catalog, spec.record, spec.batch)
        self._intents = Intents(client, settings.database, spec.table, spec.topic)
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"{settings.group_prefix}-{spec.table}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",  # aborted transactions stay out
                "session.timeout.ms": int(settings.kafka_session_timeout_s * 1000),
                "heartbeat.interval.ms": max(int(settings.kafka_session_timeout_s * 1000 / 6), 100),
                "fetch.max.bytes": 64 * 1024 * 1024,
                "log_level": 3,
            }
        )
        self._dlq = Producer(
            {"bootstrap.servers": settings.kafka_bootstrap, "acks": "all", "log_level": 3}
        )
        self._batch = Batch(settings.batch_rows, settings.batch_age_s)
        self._replay_end: dict[int, int] = {}  # partition -> last offset of its intent
        self._owned: set[int] = set()
        self._repeats = RepeatFilter(settings.repeat_window if spec.skip_repeats else 0)
        # partition -> (offset where consuming begins, first offset re-read, when it began)
        self._warm_until: dict[int, tuple[int, int, float]] = {}
        self._rows_per_message = 1.0
        self._running = False
        self._callback_error: Exception | None = None
        self._clickhouse_down = False
        self._pool = ThreadPoolExecutor(settings.insert_parallelism, f"{spec.table}-insert")
        self._m = {
            name: getattr(self.metrics, name).labels(spec.table)
            for name in ("messages", "rows", "insert_seconds", "batch_rows", "retries")
        }
        self._m.update(
            fallbacks=self.metrics.fallbacks.labels(spec.table),
            replays=self.metrics.replays.labels(spec.table),
            repeats=self.metrics.repeats.labels(spec.table),
        )

    def stop(self) -> None:
        self._stop.set()

    # -- consuming -------------------------------------------------------------------------

    def run(self) -> None:
        self._consumer.subscribe(
            [self.spec.topic],
            on_assign=self._guarded(self._on_assign),
            on_revoke=self._guarded(self._on_revoke),
        )
        log.info("sink %s: consuming %s", self.spec.table, self.spec.topic)
        self._running = True
        try:
            while not self._stop.is_set():
                room = max(1, self.settings.batch_rows - len(self._batch))
                wanted = max(1, min(10_000, int(room / self._rows_per_message)))
                for msg in self._consumer.consume(num_messages=wanted, timeout=0.1):
                    self._take(msg)
                if self._callback_error is not None:
                    raise RebalanceError(f"sink {self.spec.table}: {self._callback_error}") from (
                        self._callback_error
                    )
                if self._batch.due(time.monotonic()):
                    self.flush(self._flushable())
            self.flush(self._flushable())
        finally:
            self._running = False
            self._consumer.close()  # leaves the group
            self._pool.shutdown()
            self._dlq.flush(10)
            if not len(self._dlq):  # else leave it to be destroyed: close() would wait on
                self._dlq.close()  # the messages, and stop must not hang on a dead broker
            log.info("sink %s stopped: %s", self.spec.table, self.stats)

    def _take(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("sink %s: consumer error %s", self.spec.table, err)
            return
        p, offset = msg.partition(), msg.offset()
        ident = identity(msg.headers()) if self._repeats.window else None
        warm = self._warm_until.get(p)
        if warm is not None:
            if offset < warm[0]:  # read only to remember what the last owner took
                self._repeats.repeated(p, ident)
                return
            del self._warm_until[p]
            log.info(
                "sink %s: partition %d: re-read %d-%d for repeats in %.1f s",
                self.spec.table, p, warm[1], warm[0] - 1, time.monotonic() - warm[2],
            )  # fmt: skip
        end = self._replay_end.get(p)
        if end is not None and offset > end:
            # The intent's range is complete only if its last offset was delivered; if it was
            # not (compaction, a transaction marker), the run ends at what came before it.
            self.flush({p})
        self.stats.consumed += 1
        self._m["messages"].inc()
        if self._repeats.repeated(p, ident):
            # Committed with its run, never written: the first copy was (or will be, in an
            # earlier run) and the rollup views and dead_letters must not count it twice.
            self.stats.repeats += 1
            self._m["repeats"].inc()
            self._batch.add(p, offset, None, 0, time.monotonic())
        else:
            rows = self._rows_hint(msg)
            self._rows_per_message += (rows - self._rows_per_message) * 0.01  # to size fetches
            self._batch.add(p, offset, msg, rows, time.monotonic())
        if end is not None and offset >= end:
            self.flush({p})

    def _rows_hint(self, msg: Message) -> int:
        """Rows a message holds, for batch sizing (exact for passthrough envelopes)."""
        if not self.spec.avro:
            return 1
        try:
            return block_of(msg.value() or b"", self._items)[1]
        except NotPassthroughError:
            return 1

    def _flushable(self) -> set[int]:
        # A run rebuilding an intent must reach the intent's last offset before it is written.
        return {p for p in self._batch.runs if p not in self._replay_end}

    @property
    def ready(self) -> bool:
        """Consuming, and ClickHouse took the last insert (or none was needed yet)."""
        return self._running and not self._clickhouse_down

    def _guarded(self, callback: Callable[[Consumer, list[TopicPartition]], None]) -> Callable:
        """A rebalance callback that never raises into librdkafka: an exception raised there
        came out of consume() as a bare KafkaError that no ``except`` matches, and ended the
        consumer thread of a live process (make proof-cluster). It is raised from the loop."""

        def guarded(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            try:
                callback(consumer, partitions)
            except Exception as exc:
                self._callback_error = exc

        return guarded

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels(self.spec.table).inc()
        self._owned |= {tp.partition for tp in partitions}
        start, lows = {}, {}
        for tp in _asking(lambda: consumer.committed(partitions, timeout=30)):
            if tp.offset >= 0:
                start[tp.partition] = tp.offset
            else:  # nothing committed yet: consumption starts at the log start (earliest)
                lows[tp.partition] = _log_start(consumer, tp)
                start[tp.partition] = lows[tp.partition]
        self._warm_up(consumer, partitions, start, lows)
        self._replay(start)

    def _replay(self, start: dict[int, int]) -> None:
        """Rebuild the runs recorded as intents that start at these offsets (partition ->
        offset): their tokens then match the last owner's attempt."""
        replay = self._intents.pending(start)
        for p, last in replay.items():
            log.info(
                "sink %s: partition %d: re-inserting %d-%d as the last owner meant to",
                self.spec.table,
                p,
                start[p],
                last,
            )
        self._replay_end.update(replay)

    def _warm_up(
        self,
        consumer: Consumer,
        partitions: list[TopicPartition],
        start: dict[int, int],
        lows: dict[int, int],
    ) -> None:
        """Start each partition ``repeat_window`` messages early, so the repeat filter knows
        what the last owner took before the start offset (those messages are not written).
        ``lows``: log start offsets already asked for."""
        if not self._repeats.window:
            return
        positions = []
        for tp in partitions:
            p = tp.partition
            begin = start[p]
            if begin > lows.get(p, 0):  # a start at the log start has nothing before it
                low = _log_start(consumer, tp)
                begin = max(low, begin - self._repeats.window)
            if begin < start[p]:
                self._warm_until[p] = (start[p], begin, time.monotonic())
            positions.append(TopicPartition(self.spec.topic, p, begin))
        consumer.assign(positions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Write what we hold while we still own the partitions; if that fails, drop it: the
        # next owner finds our intents (or no commit) and writes the same ranges.
        revoked = {tp.partition for tp in partitions}
        try:
            self.flush(self._flushable() & revoked)
        except Exception:
            log.exception("sink %s: flush on revoke failed; it will be replayed", self.spec.table)
        self._batch.drop(revoked)
        self._repeats.forget(revoked)
        for p in revoked:
            self._warm_until.pop(p, None)
            self._replay_end.pop(p, None)
            with contextlib.suppress(KeyError):  # never flushed here
                self.metrics.lag.remove(self.spec.table, str(p))
        self._owned -= revoked

    # -- writing ---------------------------------------------------------------------------

    def flush(self, partitions: set[int] | None = None) -> None:
        runs = self._batch.take(partitions)
        if not runs:
            return
        fresh = [r for r in runs if self._replay_end.get(r.partition) != r.last]
        self._intents.record(fresh)
        # Runs are independent (one token each), so they are inserted side by side: ClickHouse
        # parses one insert's Avro on one thread, and a machine has more cores than that.
        written = list(self._pool.map(self._write, runs))
        self.stats.rows_written += sum(written)
        replayed = {}
        for run in runs:
            if run.repeats:
                log.info(
                    "sink %s: partition %d: %d messages in %d-%d were repeats, not written",
                    self.spec.table, run.partition, run.repeats, run.first, run.last,
                )  # fmt: skip
            if self._replay_end.pop(run.partition, None) is not None:
                self.stats.replays += 1
                self._m["replays"].inc()
                replayed[run.partition] = run.last + 1
        # A last owner whose commits failed (e.g. while the group coordinator moved) wrote
        # several runs past its committed offset: each starts where the one before ended.
        self._replay(replayed)
        self._dlq.flush(30)  # dead letters durable before their offsets are committed
        if self._commit(runs):
            self.stats.batches += 1
            self._observe_lag(runs)

    def _commit(self, runs: list[Run]) -> bool:
        offsets = [TopicPartition(self.spec.topic, r.partition, r.last + 1) for r in runs]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            return True
        except KafkaException as exc:  # lost the partitions meanwhile: the next owner replays
            log.warning(
                "sink %s: commit failed (%s); the runs will be replayed", self.spec.table, exc
            )
            return False

    def _write(self, run: Run) -> int:
        client = self._clients.get()
        try:
            return self._write_with(client, run)
        finally:
            self._clients.put(client)

    def _write_with(self, client: Client, run: Run) -> int:
        token = run.token(self.spec.topic)
        written = 0
        if not self.spec.avro:
            rows = Rows([], [])
            for msg in run.messages:
                rows.records.append(self._dead_letter_row(msg))
                rows.sources.append((msg, None))
            written += self._insert_rows(client, rows, f"{token}/rows")
        else:
            containers: dict[str, tuple[ContainerWriter, list[Message]]] = {}
            decode: list[Message] = []
            for msg in run.messages:
                try:
                    if not self.settings.avro_passthrough:
                        raise NotPassthroughError("passthrough is off")
                    item, count, payload = block_of(msg.value() or b"", self._items)
                except NotPassthroughError:
                    decode.append(msg)
                    continue
                if item.key not in containers:
                    containers[item.key] = (ContainerWriter(item), [])
                writer, members = containers[item.key]
                writer.add_block(count, payload)
                members.append(msg)
            for i, (writer, members) in enumerate(containers.values()):
                try:
                    self._insert_container(client, writer, f"{token}/avro{i}")
                    written += writer.records
                except ClickHouseRejectedError as exc:
                    log.info("sink %s: container rejected (%s); decoding it", self.spec.table, exc)
                    written += self._insert_rows(
                        client, self._decoded(members), f"{token}/avro{i}/rows"
                    )
            if decode:
                written += self._insert_rows(client, self._decoded(decode), f"{token}/rows")
        self._m["rows"].inc(written)
        self._m["batch_rows"].observe(written)
        return written

    def _decoded(self, messages: list[Message]) -> Rows:
        self._m["fallbacks"].inc(len(messages))
        rows = Rows([], [])
        for msg in messages:
            try:
                decoded = self._decode.decode(msg.value() or b"")
            except SchemaError as exc:
                self._dead_letter(msg, exc.reason, str(exc))
                continue
            if decoded.writer.name == self.spec.batch:
                for index, record in enumerate(decoded.record[self.spec.batch_field]):
                    rows.records.append(record)
                    rows.sources.append((msg, index))
            else:
                rows.records.append(decoded.record)
                rows.sources.append((msg, None))
        return rows

    def _dead_letter_row(self, msg: Message) -> dict[str, Any]:
        _, ts = msg.timestamp()
        return dead_letter_rows.row(
            key=msg.key(),
            value=msg.value(),
            headers=msg.headers(),
            timestamp_ms=ts if ts > 0 else int(time.time() * 1000),
            partition=msg.partition(),
            offset=msg.offset(),
        )

    def _insert_container(self, client: Client, writer: ContainerWriter, token: str) -> None:
        body = writer.getvalue()
        self._retrying(
            lambda: call(
                f"inserting into {self._target}",
                client.raw_insert,
                self._target,
                list(self.spec.columns),
                body,
                fmt="Avro",
                settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
            )
        )

    def _insert_rows(
        self, client: Client, rows: Rows, token: str, lo: int = 0, hi: int | None = None
    ) -> int:
        """Insert rows lo:hi; rows ClickHouse rejects as bad data are isolated by halving.
        Returns the rows written."""
        hi = len(rows.records) if hi is None else hi
        if hi <= lo:
            return 0
        part = token if (lo, hi) == (0, len(rows.records)) else f"{token}#{lo}-{hi}"
        columns = [[r[name] for r in rows.records[lo:hi]] for name in self.spec.columns]
        try:
            self._retrying(
                lambda: call(
                    f"inserting into {self._target}",
                    client.insert,
                    self._target,
                    columns,
                    column_names=list(self.spec.columns),
                    column_oriented=True,
                    settings={**INSERT_SETTINGS, "insert_deduplication_token": part},
                )
            )
            return hi - lo
        except ClickHouseRejectedError as exc:
            if hi - lo > 1:
                mid = (lo + hi) // 2
                return self._insert_rows(client, rows, token, lo, mid) + self._insert_rows(
                    client, rows, token, mid, hi
                )
            reason = f"clickhouse_{(exc.name or 'rejected').lower()}"
            self.metrics.rejected.labels(self.spec.table, reason).inc()
            msg, index = rows.sources[lo]
            if not self.spec.avro:
                # A dead letter the dead_letters table cannot hold stays where it is, in the
                # dead-letter topic (sending it there again would loop).
                log.error(
                    "sink %s: row of %s[%d]@%d rejected: %s",
                    self.spec.table,
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    exc,
                )
            elif index is None:  # the message was this one row: keep its bytes
                self._dead_letter(msg, reason, str(exc))
            else:  # one row of a batch envelope: send it alone
                value = self._encode_row(rows.records[lo])
                self._dead_letter(msg, reason, str(exc), value, index)
            return 0

    def _retrying(self, attempt: Callable[[], object]) -> None:
        def before_sleep(state: object) -> None:
            self._clickhouse_down = True
            with self._stats_lock:  # insert threads share the stats
                self.stats.retries += 1
            self._m["retries"].inc()
            log.warning("sink %s: ClickHouse unavailable, retrying", self.spec.table)

        # Keep the run and retry until ClickHouse is back or we are asked to stop; never
        # commit past it. On stop the run is abandoned uncommitted and replayed next start.
        retrying = Retrying(
            retry=retry_if_exception_type(ClickHouseUnavailableError),
            wait=wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.2),
            stop=stop_any(stop_never, lambda _: self._stop.is_set()),
            before_sleep=before_sleep,
            reraise=True,
        )
        started = time.perf_counter()
        retrying(attempt)
        self._clickhouse_down = False
        self._m["insert_seconds"].observe(time.perf_counter() - started)

    def _dead_letter(
        self,
        msg: Message,
        reason: str,
        detail: str,
        value: bytes | None = None,
        batch_index: int | None = None,
    ) -> None:
        headers = dead_letter_headers(
            list(msg.headers() or []),
            stage=f"sink:{self.spec.table}",
            reason=reason,
            detail=detail,
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            batch_index=batch_index,
        )
        value = msg.value() if value is None else value  # one row of an envelope: that row
        self._dlq.produce(self.settings.topic_dlq, key=msg.key(), value=value, headers=headers)
        self._dlq.poll(0)
        with self._stats_lock:
            self.stats.dead_letters += 1

    def _observe_lag(self, runs: list[Run]) -> None:
        for run in runs:
            tp = TopicPartition(self.spec.topic, run.partition)
            try:
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high >= 0:
                self.metrics.lag.labels(self.spec.table, str(run.partition)).set(
                    max(high - run.last - 1, 0)
                )


def _retriable(exc: BaseException) -> bool:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    if not isinstance(error, KafkaError):
        return False
    return error.retriable() or error.code() in _MOVING


# While a broker stops or restarts, a partition's leader moves and a request meanwhile fails
# with one of these. Raised from the assignment callback, it ended the sink's consumer thread
# (make proof-cluster, fault leader-broker-stop): ask again until the new leader answers.
_MOVING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
}


def _asking(request: Callable[[], Any]) -> Any:
    return Retrying(
        retry=retry_if_exception(_retriable),
        wait=wait_exponential_jitter(multiplier=0.2, max=3.0, jitter=0.2),
        stop=stop_after_delay(120),
        reraise=True,
    )(request)


def _log_start(consumer: Consumer, tp: TopicPartition) -> int:
    low, _ = _asking(lambda: consumer.get_watermark_offsets(tp, timeout=30))
    return low
