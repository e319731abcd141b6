"""Taking partitions over: where the last owner stopped, and what it was in the middle of.

Assigned a partition, a sink starts at its committed offset; if an insert intent starts there
(``intents``), the run is rebuilt to the intent's last offset before it is written, so its token
matches the last owner's attempt. With the repeat filter on, it reads ``repeat_window``
messages before the start first, only to remember them (``repeats``)."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, TopicPartition

from sinks.worker.consumer import asking, log_start
from sinks.worker.intents import Intents
from sinks.worker.repeats import RepeatFilter

log = logging.getLogger("pulse.sinks")


class Takeover:
    def __init__(self, table: str, topic: str, intents: Intents, repeats: RepeatFilter) -> None:
        self._table, self._topic = table, topic
        self._intents = intents
        self._repeats = repeats
        self.replay_end: dict[int, int] = {}  # partition -> last offset of its intent
        # partition -> (offset where consuming begins, first offset re-read, when it began)
        self._warm_until: dict[int, tuple[int, int, float]] = {}

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        start, lows = {}, {}
        for tp in asking(lambda: consumer.committed(partitions, timeout=30)):
            if tp.offset >= 0:
                start[tp.partition] = tp.offset
            else:  # nothing committed yet: consumption starts at the log start (earliest)
                lows[tp.partition] = log_start(consumer, tp)
                start[tp.partition] = lows[tp.partition]
        self._warm_up(consumer, partitions, start, lows)
        self.replay(start)

    def replay(self, start: dict[int, int]) -> None:
        """Rebuild the runs recorded as intents that start at these offsets (partition ->
        offset)."""
        replay = self._intents.pending(start)
        for p, last in replay.items():
            log.info(
                "sink %s: partition %d: re-inserting %d-%d as the last owner meant to",
                self._table, p, start[p], last,
            )  # fmt: skip
        self.replay_end.update(replay)

    def revoked(self, partitions: set[int]) -> None:
        self._repeats.forget(partitions)
        for p in partitions:
            self._warm_until.pop(p, None)
            self.replay_end.pop(p, None)

    def warming(self, partition: int, offset: int) -> bool:
        """Whether this message comes before the start, read only to remember it."""
        warm = self._warm_until.get(partition)
        if warm is None:
            return False
        if offset < warm[0]:
            return True
        del self._warm_until[partition]
        log.info(
            "sink %s: partition %d: re-read %d-%d for repeats in %.1f s",
            self._table, partition, warm[1], warm[0] - 1, time.monotonic() - warm[2],
        )  # fmt: skip
        return False

    def _warm_up(
        self,
        consumer: Consumer,
        partitions: list[TopicPartition],
        start: dict[int, int],
        lows: dict[int, int],
    ) -> None:
        """``lows``: log start offsets already asked for."""
        if not self._repeats.window:
            return
        positions = []
        for tp in partitions:
            p = tp.partition
            begin = start[p]
            if begin > lows.get(p, 0):  # a start at the log start has nothing before it
                begin = max(log_start(consumer, tp), begin - self._repeats.window)
            if begin < start[p]:
                self._warm_until[p] = (start[p], begin, time.monotonic())
            positions.append(TopicPartition(self._topic, p, begin))
        consumer.assign(positions)
