"""The worker's ordered flush: deliveries, then state, then counts, then acknowledgements.

Nothing a flush persists or acknowledges may depend on something not yet delivered: a crash
anywhere replays from the last commit, and replayed events are skipped by their position
(counts) and their id (forwarding)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faust.types import EventT, StreamT

from streams.job.changes import Flush as Changes
from streams.job.processor import Processor
from streams.metrics import StreamsMetrics
from streams.worker.output import Output

log = logging.getLogger("pulse.streams")


class Unflushed:
    """Messages processed and their outputs sent, not yet acknowledged, and since when."""

    def __init__(self) -> None:
        self._events: list[EventT] = []
        self._oldest: float | None = None  # monotonic time the oldest one was held

    def __len__(self) -> int:
        return len(self._events)

    def hold(self, event: EventT) -> None:
        """``event`` is processed and its outputs sent: the next flush acknowledges it."""
        if not self._events:
            self._oldest = time.monotonic()
        self._events.append(event)

    def take(self) -> tuple[list[EventT], float | None]:
        """All of them (for a flush to acknowledge) and when the oldest was held."""
        events, oldest = self._events, self._oldest
        self._events, self._oldest = [], None
        return events, oldest

    def age_s(self, now: float) -> float:
        """Age of the oldest one (0 when there is none)."""
        return 0.0 if self._oldest is None else now - self._oldest


class Flush:
    def __init__(
        self,
        processor: Processor,
        output: Output,
        tables: tuple[Any, Any],
        topic_counts: str,
        metrics: StreamsMetrics,
        deadline_s: float,
        trace: bool = False,
    ) -> None:
        """``tables``: faust's window-counts and dedup-ids tables; ``deadline_s``: how long a
        flush may wait for its deliveries; ``trace``: log what each flush wrote and
        acknowledged."""
        self._processor, self._output = processor, output
        self._counts_table, self._dedup_table = tables
        self._topic_counts = topic_counts
        self._metrics, self._trace = metrics, trace
        self._deadline_s = deadline_s
        self.lock = asyncio.Lock()  # processing an event and flushing exclude each other
        self.unflushed = Unflushed()
        self.stream: StreamT | None = None  # the agent's, once it runs
        self._running_since: float | None = None  # of the flush under way

    def stuck_s(self, now: float) -> float:
        """How long the flush under way has run (0 when none is)."""
        return 0.0 if self._running_since is None else now - self._running_since

    async def __call__(self) -> None:
        async with self.lock:
            started = time.perf_counter()
            self._running_since = time.monotonic()
            batch, oldest = self.unflushed.take()
            try:
                async with asyncio.timeout(self._deadline_s):
                    done = await self._persist(batch)
            except TimeoutError:
                await self._output.stalled(self._deadline_s, len(batch), oldest)
                return
            finally:
                self._running_since = None
            if done:
                self._metrics.flush.observe(time.perf_counter() - started)

    async def _persist(self, batch: list[EventT]) -> bool:
        """The ordered steps; False if a delivery failed (the worker is crashed by then)."""
        changes = self._processor.flush()  # synchronous snapshot of every change so far
        if not await self._output.delivered():  # 1. what was forwarded is delivered
            return False
        changelog = [  # 2. state, once per changed bucket or chunk
            self._counts_table.send_changelog(p, bucket, states)
            for p, bucket, states in changes.count_states
        ]
        changelog += [
            self._dedup_table.send_changelog(p, key, payload)
            for p, key, payload in changes.dedup_chunks
        ]
        # Delivered before any offset is released: faust's own flush before a commit gives
        # up on its send buffer after 0.1 s without a delivery, so a commit could precede
        # the state it depends on, and a crash then recovered counts that missed events.
        if not await self._output.settled(changelog):
            return False
        for key, value in changes.count_records:  # 3. absolute counts
            await self._output.send(self._topic_counts, key, value, source_partition=int(key))
        self._metrics.counts_emitted.inc(len(changes.count_records))  # messages
        assert self.stream is not None or not batch
        for event in batch:  # 4. now the offsets may be committed
            await self.stream.ack(event)
        if batch and self._trace:
            _log(batch, changes)
        return True


def _log(batch: list[EventT], changes: Changes) -> None:
    """What a crash analysis needs: buckets written and offsets acknowledged."""
    acked: dict[int, list[int]] = {}
    for event in batch:
        acked.setdefault(event.message.partition, []).append(event.message.offset)
    written: dict[int, int] = {}
    for p, _, _ in changes.count_states:
        written[p] = written.get(p, 0) + 1
    log.info(
        "flushed: buckets per partition %s; acked offsets %s",
        written,
        {p: (min(o), max(o)) for p, o in sorted(acked.items())},
    )
