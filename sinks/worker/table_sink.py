"""One table's sink: its consumer loop and rebalance callbacks, wired to the parts that take,
write and commit."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from clickhouse_connect.driver.client import Client

from sinks.errors import RebalanceError
from sinks.metrics import SinkMetrics, TableSeries
from sinks.settings import SinkSettings
from sinks.tables import TableSpec
from sinks.worker import consumer as kafka
from sinks.worker.batch import Batch
from sinks.worker.flush import Flush
from sinks.worker.intake import Intake
from sinks.worker.intents import Intents
from sinks.worker.rebalance import Rebalance
from sinks.worker.repeats import RepeatFilter
from sinks.worker.stats import SinkStats
from sinks.worker.takeover import Takeover
from sinks.worker.write import RunWriter

log = logging.getLogger("pulse.sinks")


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
        self.spec, self.settings, self.client = spec, settings, client
        self.stats, self.metrics = SinkStats(), metrics or SinkMetrics()
        self._series = series = TableSeries.of(self.metrics, spec.table)
        self._stop = threading.Event()
        self._consumer = kafka.consumer(settings, spec.table)
        write = RunWriter.for_table(
            spec, settings, [client, *(insert_clients or [])], self.stats, series, self._stop
        )
        self._inserter, self._write = write.insert, write
        intents = Intents(client, settings.database, spec.table, spec.topic)
        repeats = RepeatFilter(settings.repeat_window if spec.skip_repeats else 0)
        self._takeover = Takeover(spec.table, spec.topic, intents, repeats)
        self._batch = Batch(settings.batch_rows, settings.batch_age_s)
        self._pool = ThreadPoolExecutor(settings.insert_parallelism, f"{spec.table}-insert")
        self._flush = Flush(spec.topic, self._consumer, intents, self._takeover, write, self._pool,
                            self.stats, series)  # fmt: skip
        items = write.decode.items if write.decode else None
        self._take = Intake(
            self._batch, self._takeover, repeats, items, self.flush, self.stats, series
        )
        self._rebalance = Rebalance(self._batch, self._takeover, self.flush, series)
        self._running = False

    def stop(self) -> None:
        self._stop.set()

    @property
    def ready(self) -> bool:
        """Consuming, and ClickHouse took the last insert (or none was needed yet)."""
        return self._running and not self._inserter.unavailable

    def stalled(self, now: float, bound_s: float) -> str | None:
        """The flush step past ``bound_s``, if any (retries of an unavailable ClickHouse are
        none: each attempt is bounded, and the sink reports itself not ready)."""
        return None if self._inserter.unavailable else self._flush.step.stalled(now, bound_s)

    @property
    def holding(self) -> bool:
        """Whether consumed messages wait to be written."""
        return not self._batch.empty

    def run(self) -> None:
        self._rebalance.subscribe(self._consumer, self.spec.topic)
        log.info("sink %s: consuming %s", self.spec.table, self.spec.topic)
        self._running = True
        try:
            while not self._stop.is_set():
                for msg in self._consumer.consume(num_messages=self._take.wanted(), timeout=0.1):
                    self._take(msg)
                if (error := self._rebalance.error) is not None:
                    raise RebalanceError(f"sink {self.spec.table}: {error}") from error
                if self._batch.due(time.monotonic()):
                    self.flush(self._rebalance.flushable())
            self.flush(self._rebalance.flushable())
        finally:
            self._running = False
            self._consumer.close()  # leaves the group
            self._pool.shutdown()
            self._write.close()
            log.info("sink %s stopped: %s", self.spec.table, self.stats)

    def flush(self, partitions: set[int] | None = None) -> None:
        runs = self._batch.take(partitions)
        if runs:
            self._flush(runs)
