"""Rows built in Python, for what cannot be handed to ClickHouse as Avro bytes: dead letters
(rows from their headers), other framings and rejected containers (decoded here)."""

from __future__ import annotations

import time

from confluent_kafka import Message

from schemas import Decoder, Encoder, SchemaError, default_catalog
from schemas.container import ItemSchemas
from sinks import dead_letter_rows
from sinks.metrics import TableSeries
from sinks.tables import TableSpec
from sinks.worker.dead_letters import DeadLetters
from sinks.worker.erasures import named
from sinks.worker.insert import Rows


class RowDecoder:
    """Decodes a table's Avro messages into rows; what does not decode is dead-lettered."""

    def __init__(self, spec: TableSpec, series: TableSeries, dead_letters: DeadLetters) -> None:
        assert spec.record is not None
        catalog = default_catalog()
        names = [spec.record] + ([spec.batch] if spec.batch else [])
        self._decoder = Decoder(catalog, names)
        self.encode = Encoder(catalog.latest(spec.record))  # one row, alone
        self.items = ItemSchemas(catalog, spec.record, spec.batch)
        self._batch, self._batch_field = spec.batch, spec.batch_field
        self._series = series
        self._dead_letters = dead_letters

    def __call__(self, messages: list[Message]) -> Rows:
        self._series.fallbacks.inc(len(messages))
        rows = Rows([], [])
        for msg in messages:
            try:
                decoded = self._decoder.decode(msg.value() or b"")
            except SchemaError as exc:
                self._dead_letters.send(msg, exc.reason, str(exc))
                continue
            if decoded.writer.name == self._batch:
                for index, record in enumerate(decoded.record[self._batch_field]):
                    rows.records.append(record)
                    rows.sources.append((msg, index))
            else:
                rows.records.append(decoded.record)
                rows.sources.append((msg, None))
        return rows


def dead_letter_table_rows(messages: list[Message], erased: frozenset[str] = frozenset()) -> Rows:
    """Rows of the dead_letters table, one per dead-letter message; one that names an erased
    person keeps only where it was and the keyed id."""
    rows = Rows([], [])
    for msg in messages:
        _, ts = msg.timestamp()
        row = dead_letter_rows.row(
            key=msg.key(),
            value=msg.value(),
            headers=msg.headers(),
            timestamp_ms=ts if ts > 0 else int(time.time() * 1000),
            partition=msg.partition(),
            offset=msg.offset(),
        )
        ids = named((msg.value() or b"") + b" " + row["detail"].encode(), erased, anywhere=True)
        rows.records.append(dead_letter_rows.erased(row, min(ids)) if ids else row)
        rows.sources.append((msg, None))
    return rows
