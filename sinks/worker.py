"""A sink worker: one consumer group per table; consume, batch, insert, then commit.

Offsets are committed only after ClickHouse acknowledged the insert. A transient ClickHouse
failure keeps the batch and retries it with backoff (never committing past it); each insert
carries a deduplication token naming the exact offsets, so a retried insert cannot double rows.
Messages that do not decode go to the dead-letter topic with their original bytes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_any,
    stop_never,
    wait_exponential_jitter,
)

from schemas import Decoder, Encoder, SchemaError, default_catalog
from schemas.dead_letters import dead_letter_headers
from sinks.batch import Batch
from sinks.clickhouse import call
from sinks.errors import ClickHouseRejectedError, ClickHouseUnavailableError
from sinks.settings import SinkSettings
from sinks.tables import TableSpec

log = logging.getLogger("pulse.sinks")


@dataclass
class SinkStats:
    consumed: int = 0
    rows_written: int = 0
    dead_letters: int = 0
    batches: int = 0
    retries: int = 0


class TableSink:
    """Consumes ``spec.topic`` into ``spec.table`` until :meth:`stop` is called."""

    def __init__(self, spec: TableSpec, settings: SinkSettings, client: Client) -> None:
        self.spec = spec
        self.settings = settings
        self.client = client
        self.stats = SinkStats()
        self._stop = threading.Event()
        names = [spec.record] + ([spec.batch] if spec.batch else [])
        self._decode = Decoder(default_catalog(), names)
        self._encode_row = Encoder(default_catalog().latest(spec.record))
        self._target = f"{settings.database}.{spec.table}"
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"{settings.group_prefix}-{spec.table}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": int(settings.kafka_session_timeout_s * 1000),
                "heartbeat.interval.ms": max(int(settings.kafka_session_timeout_s * 1000 / 6), 100),
                "log_level": 3,
            }
        )
        self._dlq = Producer(
            {"bootstrap.servers": settings.kafka_bootstrap, "acks": "all", "log_level": 3}
        )
        self._batch = self._new_batch()

    def _new_batch(self) -> Batch:
        return Batch(self.spec.columns, self.settings.batch_rows, self.settings.batch_age_s)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        self._consumer.subscribe([self.spec.topic], on_revoke=self._on_revoke)
        log.info("sink %s: consuming %s", self.spec.table, self.spec.topic)
        try:
            while not self._stop.is_set():
                room = max(1, self.settings.batch_rows - len(self._batch))
                for msg in self._consumer.consume(num_messages=min(room, 5000), timeout=0.1):
                    self._take(msg)
                if self._batch.due(time.monotonic()):
                    self.flush()
            self.flush()
        finally:
            self._consumer.close()  # leaves the group
            self._dlq.flush(10)
            log.info("sink %s stopped: %s", self.spec.table, self.stats)

    def _take(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("sink %s: consumer error %s", self.spec.table, err)
            return
        self.stats.consumed += 1
        self._batch.track(msg.partition(), msg.offset(), time.monotonic())
        try:
            decoded = self._decode.decode(msg.value() or b"")
        except SchemaError as exc:
            self._dead_letter(msg, exc.reason, str(exc))
            return
        if decoded.writer.name == self.spec.batch:
            for index, record in enumerate(decoded.record[self.spec.batch_field]):
                self._batch.add(record, (msg, index, record))
        else:
            self._batch.add(decoded.record, (msg, None, decoded.record))

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
        self.stats.dead_letters += 1

    def flush(self) -> None:
        batch = self._batch
        if batch.empty:
            return
        if batch.rows:
            self._insert(batch)
        self._dlq.flush(30)  # dead letters durable before their offsets are committed
        offsets = [TopicPartition(self.spec.topic, p, o) for p, o in batch.commit_offsets().items()]
        self._consumer.commit(offsets=offsets, asynchronous=False)
        self.stats.rows_written += batch.rows
        self.stats.batches += 1
        self._batch = self._new_batch()

    def _insert(self, batch: Batch, lo: int = 0, hi: int | None = None) -> None:
        """Insert rows lo:hi; rows ClickHouse rejects as bad data are isolated by halving."""
        hi = batch.rows if hi is None else hi
        token = batch.dedup_token(self.spec.topic)
        if (lo, hi) != (0, batch.rows):
            token += f"#{lo}-{hi}"
        try:
            self._insert_retrying(batch.slice(lo, hi), token)
        except ClickHouseRejectedError as exc:
            if hi - lo == 1:
                reason = f"clickhouse_{(exc.name or 'rejected').lower()}"
                msg, index, record = batch.sources[lo]
                if index is None:  # the message was this one row: keep its bytes
                    self._dead_letter(msg, reason, str(exc))
                else:  # one row of a batch envelope: send it alone
                    self._dead_letter(msg, reason, str(exc), self._encode_row(record), index)
                return
            mid = (lo + hi) // 2
            self._insert(batch, lo, mid)
            self._insert(batch, mid, hi)

    def _insert_retrying(self, columns: list[list[object]], token: str) -> None:
        def attempt() -> None:
            call(
                f"inserting into {self._target}",
                self.client.insert,
                self._target,
                columns,
                column_names=list(self.spec.columns),
                column_oriented=True,
                settings={"insert_deduplication_token": token},
            )

        def before_sleep(state: object) -> None:
            self.stats.retries += 1
            log.warning("sink %s: ClickHouse unavailable, retrying batch", self.spec.table)

        # Keep the batch and retry until ClickHouse is back or we are asked to stop; never
        # commit past it. On stop the batch is abandoned uncommitted and replayed next start.
        retrying = Retrying(
            retry=retry_if_exception_type(ClickHouseUnavailableError),
            wait=wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.2),
            stop=stop_any(stop_never, lambda _: self._stop.is_set()),
            before_sleep=before_sleep,
            reraise=True,
        )
        retrying(attempt)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Flush what we hold while we still own the partitions; drop it if that fails.
        try:
            self.flush()
        except Exception:
            log.exception(
                "sink %s: flush on revoke failed; batch will be replayed", self.spec.table
            )
            self._batch = self._new_batch()
