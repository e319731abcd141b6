"""A consumed message into the sink's batch: warm-up reads remembered only, repeats taken with
nothing to write, an intent's run flushed once it reaches the intent's last offset."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import Message

from schemas.container import ItemSchemas, NotPassthroughError, block_of
from sinks.metrics import TableSeries
from sinks.worker.batch import Batch
from sinks.worker.consumer import is_partition_end
from sinks.worker.repeats import RepeatFilter, identity
from sinks.worker.stats import SinkStats
from sinks.worker.takeover import Takeover

log = logging.getLogger("pulse.sinks")


class Intake:
    def __init__(
        self,
        batch: Batch,
        takeover: Takeover,
        repeats: RepeatFilter,
        items: ItemSchemas | None,
        flush: Callable[[set[int]], None],
        stats: SinkStats,
        series: TableSeries,
    ) -> None:
        """``items``: the Avro schemas of the table's rows (None: rows are not Avro)."""
        self._batch, self._takeover, self._repeats = batch, takeover, repeats
        self._items = items
        self._flush = flush
        self._stats, self._series = stats, series
        self._rows_per_message = 1.0

    def wanted(self) -> int:
        """Messages to ask for next: about what fills the batch."""
        room = max(1, self._batch.max_rows - len(self._batch))
        return max(1, min(10_000, int(room / self._rows_per_message)))

    def __call__(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if not is_partition_end(err):
                log.warning("sink %s: consumer error %s", self._series.table, err)
            return
        p, offset = msg.partition(), msg.offset()
        ident = identity(msg.headers()) if self._repeats.window else None
        if self._takeover.warming(p, offset):
            self._repeats.repeated(p, ident)
            return
        end = self._takeover.replay_end.get(p)
        if end is not None and offset > end:
            # The intent's range is complete only if its last offset was delivered; if it was
            # not (compaction, a transaction marker), the run ends at what came before it.
            self._flush({p})
        self._stats.consumed += 1
        self._series.messages.inc()
        if self._repeats.repeated(p, ident):
            # Committed with its run, never written: the first copy was (or will be, in an
            # earlier run) and the rollup views and dead_letters must not count it twice.
            self._stats.repeats += 1
            self._series.repeats.inc()
            self._batch.add(p, offset, None, 0, time.monotonic())
        else:
            rows = self._rows_hint(msg)
            self._rows_per_message += (rows - self._rows_per_message) * 0.01  # to size fetches
            self._batch.add(p, offset, msg, rows, time.monotonic())
        if end is not None and offset >= end:
            self._flush({p})

    def _rows_hint(self, msg: Message) -> int:
        """Rows a message holds, for batch sizing (exact for passthrough envelopes)."""
        if self._items is None:
            return 1
        try:
            return block_of(msg.value() or b"", self._items)[1]
        except NotPassthroughError:
            return 1
