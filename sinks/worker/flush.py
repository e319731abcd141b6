"""The ordered flush of a sink's runs: intents first, inserts side by side, dead letters
durable, then the commit — never before."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, KafkaException, TopicPartition

from sinks.metrics import TableSeries
from sinks.worker.batch import Run
from sinks.worker.intents import Intents
from sinks.worker.stats import SinkStats
from sinks.worker.takeover import Takeover
from sinks.worker.write import RunWriter

log = logging.getLogger("pulse.sinks")


class Step:
    """The flush step under way and since when (the process's watchdog reads it)."""

    def __init__(self, table: str) -> None:
        self._table = table
        self._step: tuple[str, float] | None = None

    def at(self, what: str | None) -> None:
        """``what`` starts now; None: the flush is over."""
        self._step = None if what is None else (what, time.monotonic())

    def stalled(self, now: float, bound_s: float) -> str | None:
        """The step under way, if it has run longer than ``bound_s``."""
        step = self._step  # read once: the flush's thread replaces it
        if step is None or now - step[1] <= bound_s:
            return None
        return f"sink {self._table}: {step[0]} for {now - step[1]:.0f}s"


class Flush:
    def __init__(
        self,
        topic: str,
        consumer: Consumer,
        intents: Intents,
        takeover: Takeover,
        write: RunWriter,
        pool: ThreadPoolExecutor,
        stats: SinkStats,
        series: TableSeries,
    ) -> None:
        self._topic, self._consumer = topic, consumer
        self._intents, self._takeover = intents, takeover
        self._write, self._pool = write, pool
        self._stats, self._series = stats, series
        self.step = Step(series.table)

    def __call__(self, runs: list[Run]) -> None:
        ranges = ", ".join(f"[{r.partition}] {r.first}-{r.last}" for r in runs)
        try:
            self._flush(runs, lambda what: self.step.at(f"{what} offsets {ranges}"))
        finally:
            self.step.at(None)

    def _flush(self, runs: list[Run], at: Callable[[str], None]) -> None:
        at("recording intents of")
        replay_end = self._takeover.replay_end
        self._intents.record(r for r in runs if replay_end.get(r.partition) != r.last)
        # Every erasure published before this flush applies to it (see erasure.mark).
        at("reading the erasures for")
        erased = self._write.erasures.sync() if self._write.erasures else frozenset()
        # Runs are independent (one token each), so they are inserted side by side: ClickHouse
        # parses one insert's Avro on one thread, and a machine has more cores than that.
        at("inserting")
        written = self._pool.map(lambda run: self._write(run, erased), runs)
        self._stats.add("rows_written", sum(written))
        replayed = {}
        for run in runs:
            if run.repeats:
                log.info(
                    "sink %s: partition %d: %d messages in %d-%d were repeats, not written",
                    self._series.table, run.partition, run.repeats, run.first, run.last,
                )  # fmt: skip
            if replay_end.pop(run.partition, None) is not None:
                self._stats.add("replays")
                self._series.replays.inc()
                replayed[run.partition] = run.last + 1
        # A last owner whose commits failed (e.g. while the group coordinator moved) wrote
        # several runs past its committed offset: each starts where the one before ended.
        self._takeover.replay(replayed)
        at("delivering the dead letters of")
        self._write.dead_letters.flush(
            30
        )  # dead letters durable before their offsets are committed
        at("committing")
        if self._commit(runs):
            self._stats.add("batches")
            self._observe_lag(runs)

    def _commit(self, runs: list[Run]) -> bool:
        offsets = [TopicPartition(self._topic, r.partition, r.last + 1) for r in runs]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            return True
        except KafkaException as exc:  # lost the partitions meanwhile: the next owner replays
            log.warning(
                "sink %s: commit failed (%s); the runs will be replayed", self._series.table, exc
            )
            return False

    def _observe_lag(self, runs: list[Run]) -> None:
        for run in runs:
            tp = TopicPartition(self._topic, run.partition)
            try:
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high >= 0:
                self._series.lag(run.partition, max(high - run.last - 1, 0))
