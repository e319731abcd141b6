"""The sequence guard: every offset of the raw topic is processed, in order, exactly once.

The raw topic is neither compacted nor transactional, so offsets within a partition are
contiguous and a jump means messages were skipped. That happens with faust: at a rebalance it
drops fetched messages from the stream buffer, and its consumer can then resume past them and
count them as a "gap" it commits over (on Apache Kafka too:
tests/integration/test_streams_faults.py::test_rebalance_crash_duplicates_and_catalog[join]
loses runs of 3-4 offsets per partition without this guard). So each partition's next offset
is tracked (from the committed position after an assignment). On a jump the agent seeks back
and, until the missing offset arrives, drops the messages faust had already fetched past it
(they come again, in order). A jump that outlasts GAP_PATIENCE_S is taken as real.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import faust

from streams.metrics import StreamsMetrics
from streams.worker.faust_adapter import committed_offset, is_paused

log = logging.getLogger("pulse.streams")
GAP_PATIENCE_S = 30.0
SEEK_RETRY_S = 2.0
STALL_S = 5.0  # an owned partition with unread messages and nothing delivered this long


class SequenceGuard:
    def __init__(
        self, app: faust.App, raw_topic: Callable[[], str], metrics: StreamsMetrics
    ) -> None:
        self.app, self.raw_topic, self.metrics = app, raw_topic, metrics
        self.next_offset: dict[Any, int] = {}
        self.seeking: dict[Any, tuple[int, float]] = {}
        self.last_seek: dict[Any, float] = {}
        self.last_arrival: dict[Any, float] = {}
        self.settled_at = 0.0  # when the last rebalance completed

    async def admit(self, msg: Any) -> bool:
        """Whether to process ``msg``; False: faust skipped messages before it, and they are
        being read again."""
        tp, offset = msg.tp, msg.offset
        self.last_arrival[tp] = time.monotonic()
        target = self.seeking.get(tp)
        if target is not None:
            wanted, since = target
            if offset > wanted and time.monotonic() - since < GAP_PATIENCE_S:
                return False  # fetched before the seek: it will be delivered again
            if offset >= wanted:
                del self.seeking[tp]
                self.last_seek.pop(tp, None)
                if offset > wanted:
                    log.error(
                        "offsets %s-%s of %s[%s] did not come back; continuing",
                        wanted, offset - 1, msg.topic, msg.partition,
                    )  # fmt: skip
                self.next_offset[tp] = offset + 1
            return True  # below the target: an old message again, replay-safe
        expected = self.next_offset.get(tp)
        if expected is None:
            expected = committed_offset(self.app, tp)  # where faust's seek put us
        if expected is not None and offset > expected:
            self.seeking[tp] = (expected, time.monotonic())
            self.metrics.offset_gaps.inc()
            log.warning(
                "offsets %s-%s of %s[%s] were skipped by the consumer; re-reading",
                expected, offset - 1, msg.topic, msg.partition,
            )  # fmt: skip
            await self.app.consumer.seek(tp, expected)
            self.last_seek[tp] = time.monotonic()
            return False
        self.next_offset[tp] = max(offset + 1, expected or 0)
        return True

    async def reseek(self, now: float) -> None:
        # A seek issued while faust was still settling a rebalance was seen to be lost, and the
        # agent cannot act while nothing arrives: repeat seeks that brought nothing back.
        for tp, (wanted, _) in list(self.seeking.items()):
            if now - self.last_seek.get(tp, 0.0) > SEEK_RETRY_S:
                log.info("re-seeking %s[%s] to %s", tp.topic, tp.partition, wanted)
                await self.app.consumer.seek(tp, wanted)
                self.last_seek[tp] = now

    def rebalanced(self) -> None:
        # A partition kept through the rebalance resumes where this worker stopped: everything
        # processed was flushed and acknowledged at the revoke. That position must be kept,
        # not taken from faust's committed offsets: those were still empty when the first
        # message after an assignment arrived, and messages of a batch fetched before the
        # rebalance had been dropped, so the guard had nothing to compare with and runs of
        # 3-50 offsets were lost (test_rebalance_crash_duplicates_and_catalog[join]).
        owned = set(self.app.assignor.assigned_actives())
        for tp in list(self.next_offset):
            if tp not in owned:
                del self.next_offset[tp]
        self.seeking.clear()
        self.last_seek.clear()
        self.settled_at = time.monotonic()


class StallWatch:
    """Partitions the guard cannot see stall, since nothing arrives from them; and the lag."""

    def __init__(self, guard: SequenceGuard) -> None:
        self._guard = guard
        self._app, self._raw_topic, self._metrics = guard.app, guard.raw_topic, guard.metrics
        # owned partitions with messages waiting -> (position, since when it stands there)
        self._progress: dict[Any, tuple[int, float]] = {}

    async def unstall(self, now: float) -> None:
        # After a rebalance faust was seen to deliver nothing more from a kept partition while
        # messages waited past the position this worker had reached: it had taken the offsets
        # dropped from its stream buffer as a gap and moved on, and with no later message
        # ``admit`` cannot see the jump (test_rebalance_crash_duplicates_and_catalog lost
        # 50-offset runs of one partition). Such a partition is re-read from where we are.
        # Never while faust recovers the tables: it pauses the partitions until the state is
        # restored, and events processed before that would count against a partial state.
        app = self._app
        settling = now - self._guard.settled_at < STALL_S
        if settling or app.rebalancing or not app.tables.recovery.completed.is_set():
            return
        for tp, end in self._ends():
            expected = self._guard.next_offset.get(tp)
            if expected is None or tp in self._guard.seeking:
                continue
            quiet = now - max(
                self._guard.last_arrival.get(tp, 0.0), self._guard.last_seek.get(tp, 0.0)
            )
            if end is None or end <= expected or quiet < STALL_S:
                continue
            log.warning(
                "%s[%s] stalled at offset %s (end %s, paused %s, committed %s); re-reading",
                tp.topic, tp.partition, expected, end, is_paused(app, tp),
                committed_offset(app, tp),
            )  # fmt: skip
            self._metrics.offset_gaps.inc()
            app.consumer.resume_partitions({tp})
            await app.consumer.seek(tp, expected)
            self._guard.last_seek[tp] = now

    def observe_lag(self, now: float) -> None:
        """The lag of each owned partition, and since when its position has not moved while
        messages waited (the clock restarts whenever it moves, nothing waits, or nothing can
        move: a rebalance or the tables' recovery under way)."""
        app, owned = self._app, {}
        held = app.rebalancing or not app.tables.recovery.completed.is_set()
        for tp, end in self._ends():
            position = self._guard.next_offset.get(tp, committed_offset(self._app, tp))
            if end is not None and position is not None:
                self._metrics.lag.labels(str(tp.partition)).set(max(end - position, 0))
                if end > position:  # messages wait: since when has it stood here?
                    last = self._progress.get(tp)
                    moved = held or last is None or last[0] != position
                    owned[tp] = (position, now) if moved else last
        self._progress = owned

    def stalled(self, now: float, bound_s: float) -> list[str]:
        """Owned partitions whose position has not moved for ``bound_s`` while messages
        waited; none while a rebalance or the tables' recovery is under way."""
        app = self._app
        if app.rebalancing or not app.tables.recovery.completed.is_set():
            return []
        return [
            f"{tp.topic}[{tp.partition}] at {position}"
            for tp, (position, since) in sorted(self._progress.items())
            if now - since > bound_s
        ]

    def _ends(self) -> list[tuple[Any, int | None]]:
        """(tp, high watermark) of the owned raw partitions fetched so far."""
        raw, ends = self._raw_topic(), []
        for tp in self._app.assignor.assigned_actives():
            if tp.topic != raw:
                continue
            try:
                ends.append((tp, self._app.consumer.highwater(tp)))
            except Exception:  # not fetched yet: nothing to say
                continue
        return ends
