"""A sink's rebalance callbacks: partitions taken over on assignment; on revocation what is
held is written while the partitions are still owned, and forgotten if that fails."""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from sinks.metrics import TableSeries
from sinks.worker import consumer as kafka
from sinks.worker.batch import Batch
from sinks.worker.takeover import Takeover

log = logging.getLogger("pulse.sinks")


class Rebalance:
    def __init__(
        self,
        batch: Batch,
        takeover: Takeover,
        flush: Callable[[set[int]], None],
        series: TableSeries,
    ) -> None:
        self._batch, self._takeover, self._flush = batch, takeover, flush
        self._series = series
        self.error: Exception | None = None  # raised by a callback, for the loop to raise

    def subscribe(self, consumer: Consumer, topic: str) -> None:
        consumer.subscribe(
            [topic],
            on_assign=kafka.guarded(self._assigned, self._keep),
            on_revoke=kafka.guarded(self._revoked, self._keep),
        )

    def flushable(self) -> set[int]:
        # A run rebuilding an intent must reach the intent's last offset before it is written.
        return {p for p in self._batch.runs if p not in self._takeover.replay_end}

    def _keep(self, exc: Exception) -> None:
        self.error = exc

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._series.rebalances.inc()
        self._takeover.assigned(consumer, partitions)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # If the write fails, the next owner finds our intents (or no commit) and writes the
        # same ranges.
        revoked = {tp.partition for tp in partitions}
        try:
            self._flush(self.flushable() & revoked)
        except Exception:
            log.exception(
                "sink %s: flush on revoke failed; it will be replayed", self._series.table
            )
        self._batch.drop(revoked)
        self._takeover.revoked(revoked)
        for p in revoked:
            self._series.forget_lag(p)
