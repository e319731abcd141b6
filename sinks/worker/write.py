"""Writing one partition's run: Avro messages are handed to ClickHouse as object containers,
their bytes copied, not decoded (``schemas.container``); what cannot be passed through (another
framing, a rejected container) is decoded and inserted as rows."""

from __future__ import annotations

import logging
import queue
import threading

from clickhouse_connect.driver.client import Client
from confluent_kafka import Message

from schemas.container import ContainerWriter, ItemSchemas, NotPassthroughError
from sinks.errors import ClickHouseRejectedError
from sinks.metrics import TableSeries
from sinks.settings import SinkSettings
from sinks.tables import TableSpec
from sinks.worker.batch import Run
from sinks.worker.dead_letters import DeadLetters
from sinks.worker.erasures import ErasedIds
from sinks.worker.insert import Inserter, Rows
from sinks.worker.rows import RowDecoder, dead_letter_table_rows
from sinks.worker.scrub import Scrub, block
from sinks.worker.stats import SinkStats

log = logging.getLogger("pulse.sinks")


class RunWriter:
    def __init__(
        self,
        spec: TableSpec,
        passthrough: bool,
        clients: list[Client],
        inserter: Inserter,
        dead_letters: DeadLetters,
        series: TableSeries,
        erasures: ErasedIds | None = None,
    ) -> None:
        """``clients``: one run at a time each; ``erasures``: for rows that can name a person."""
        self._spec, self._passthrough = spec, passthrough
        self._clients: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for client in clients:
            self._clients.put(client)
        self.insert, self.dead_letters, self.erasures = inserter, dead_letters, erasures
        self._series = series
        self.decode = RowDecoder(spec, series, dead_letters) if spec.avro else None
        self._scrub = Scrub(spec, dead_letters) if spec.avro and spec.erasable else None
        self._rejected = _Rejected(spec, self.decode, dead_letters, series)

    @classmethod
    def for_table(
        cls,
        spec: TableSpec,
        settings: SinkSettings,
        clients: list[Client],
        stats: SinkStats,
        series: TableSeries,
        stop: threading.Event,
    ) -> RunWriter:
        """With an inserter and a dead-letter producer of its own."""
        target = f"{settings.database}.{spec.table}"
        inserter = Inserter(target, spec.columns, series, stats, stop)
        dead_letters = DeadLetters(settings, spec.table, stats)
        erasures = ErasedIds.of(settings) if spec.erasable else None
        return cls(spec, settings.avro_passthrough, clients, inserter, dead_letters, series,
                   erasures)  # fmt: skip

    def close(self) -> None:
        self.dead_letters.close()
        if self.erasures:
            self.erasures.close()

    def __call__(self, run: Run, erased: frozenset[str] = frozenset()) -> int:
        """Write the run but the rows of ``erased`` keyed ids; returns the rows written."""
        client = self._clients.get()
        try:
            token = run.token(self._spec.topic)
            if self.decode is None:
                rows = dead_letter_table_rows(run.messages, erased)
                written = self.insert.rows(client, rows, f"{token}/rows", self._rejected)
            else:
                messages = self._scrub(run.messages, erased) if self._scrub else run.messages
                written = self._avro(client, messages, token)
        finally:
            self._clients.put(client)
        self._series.rows.inc(written)
        self._series.batch_rows.observe(written)
        return written

    def _avro(self, client: Client, messages: list[Message], token: str) -> int:
        assert self.decode is not None
        containers, undecoded = assemble(messages, self.decode.items, self._passthrough)
        written = 0
        for i, (writer, members) in enumerate(containers):
            if not writer.records:  # its messages' rows were all erased: the numbering stays
                continue
            try:
                self.insert.container(client, writer, f"{token}/avro{i}")
                written += writer.records
            except ClickHouseRejectedError as exc:
                log.info("sink %s: container rejected (%s); decoding it", self._spec.table, exc)
                rows = self.decode(members)
                written += self.insert.rows(client, rows, f"{token}/avro{i}/rows", self._rejected)
        if undecoded:
            rows = self.decode(undecoded)
            written += self.insert.rows(client, rows, f"{token}/rows", self._rejected)
        return written


Containers = list[tuple[ContainerWriter, list[Message]]]


def assemble(
    messages: list[Message], items: ItemSchemas, passthrough: bool
) -> tuple[Containers, list[Message]]:
    """One object container per writer schema, with its messages; and what must be decoded."""
    containers: dict[str, tuple[ContainerWriter, list[Message]]] = {}
    undecoded: list[Message] = []
    for msg in messages:
        try:
            if not passthrough:
                raise NotPassthroughError("passthrough is off")
            item, count, payload = block(msg, items)
        except NotPassthroughError:
            undecoded.append(msg)
            continue
        if item.key not in containers:
            containers[item.key] = (ContainerWriter(item), [])
        writer, members = containers[item.key]
        if count:
            writer.add_block(count, payload)
        members.append(msg)
    return list(containers.values()), undecoded


class _Rejected:
    """Where a row ClickHouse rejected goes: the dead-letter topic, alone."""

    def __init__(
        self,
        spec: TableSpec,
        decode: RowDecoder | None,
        dead_letters: DeadLetters,
        series: TableSeries,
    ) -> None:
        self._table, self._decode = spec.table, decode
        self._dead_letters, self._series = dead_letters, series

    def __call__(self, rows: Rows, index: int, exc: ClickHouseRejectedError) -> None:
        reason = f"clickhouse_{(exc.name or 'rejected').lower()}"
        self._series.rejected(reason)
        msg, batch_index = rows.sources[index]
        if self._decode is None:
            # A dead letter the dead_letters table cannot hold stays where it is, in the
            # dead-letter topic (sending it there again would loop).
            log.error(
                "sink %s: row of %s[%d]@%d rejected: %s",
                self._table, msg.topic(), msg.partition(), msg.offset(), exc,
            )  # fmt: skip
        elif batch_index is None:  # the message was this one row: keep its bytes
            self._dead_letters.send(msg, reason, str(exc))
        else:  # one row of a batch envelope: send it alone
            value = self._decode.encode(rows.records[index])
            self._dead_letters.send(msg, reason, str(exc), value, batch_index)
