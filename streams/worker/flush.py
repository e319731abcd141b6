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
from streams.job.enrich import PluginLookup
from streams.job.processor import Processor
from streams.metrics import StreamsMetrics
from streams.worker.output import Output

log = logging.getLogger("pulse.streams")


class Flush:
    def __init__(
        self,
        processor: Processor,
        output: Output,
        tables: tuple[Any, Any],
        topic_counts: str,
        metrics: StreamsMetrics,
        plugins: PluginLookup,
        trace: bool = False,
    ) -> None:
        """``tables``: faust's window-counts and dedup-ids tables; ``trace``: log what each
        flush wrote and acknowledged."""
        self._processor, self._output = processor, output
        self._counts_table, self._dedup_table = tables
        self._topic_counts = topic_counts
        self._metrics, self._plugins, self._trace = metrics, plugins, trace
        self.lock = asyncio.Lock()  # processing an event and flushing exclude each other
        self.pending: list[EventT] = []  # processed, not yet acknowledged
        self.stream: StreamT | None = None  # the agent's, once it runs

    async def __call__(self) -> None:
        async with self.lock:
            started = time.perf_counter()
            batch = self.pending[:]
            self.pending.clear()
            changes = self._processor.flush()  # synchronous snapshot of every change so far
            if not await self._output.delivered():  # 1. what was forwarded is delivered
                return
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
                return
            for key, value in changes.count_records:  # 3. absolute counts
                await self._output.send(self._topic_counts, key, value, source_partition=int(key))
            self._metrics.counts_emitted.inc(len(changes.count_records))  # messages
            assert self.stream is not None or not batch
            for event in batch:  # 4. now the offsets may be committed
                await self.stream.ack(event)
            if batch and self._trace:
                self._log(batch, changes)
            plugins = len(self._plugins) if hasattr(self._plugins, "__len__") else 0
            self._metrics.catalog_plugins.set(plugins)
            self._metrics.flush.observe(time.perf_counter() - started)

    def _log(self, batch: list[EventT], changes: Changes) -> None:
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
