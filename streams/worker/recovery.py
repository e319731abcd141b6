"""After faust recovers the tables (at start and after every rebalance): the in-memory indexes
rebuilt from them; and a watch on a recovery that reads nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import faust

from streams.errors import StreamsError
from streams.job.processor import Processor
from streams.worker.faust_adapter import committed_offsets
from streams.worker.output import Output

log = logging.getLogger("pulse.streams")
RECOVERY_STALL_S = 60.0  # table recovery with no changelog record read this long
RECOVERY_RESEEK_S = 10.0  # ...and its stuck partitions are sought again this often


class StateReload:
    """Rebuilds the processor's indexes from the recovered tables. Done in the agent loop,
    because faust resumes the stream only after recovery; ``needed`` is set at every
    rebalance."""

    def __init__(
        self,
        app: faust.App,
        processor: Processor,
        dedup_table: Any,
        output: Output,
        topic_counts: str,
        owned: Callable[[], set[int]],
        trace: bool = False,
    ) -> None:
        self._app, self._processor, self._dedup_table = app, processor, dedup_table
        self._output, self._topic_counts = output, topic_counts
        self._owned, self._trace = owned, trace
        self.needed = True

    async def __call__(self) -> None:
        self.needed = False
        owned, processor = self._owned(), self._processor
        processor.dedup.forget(processor.dedup.partitions() - owned)
        processor.counter.forget(set(processor.counter.watermark) - owned)
        loaded = processor.counter.reindex(owned)
        to_load = owned - processor.dedup.partitions()  # partitions new to this worker
        for key, payload in list(self._dedup_table.data.items()):
            p = int(str(key).split(":", 1)[0])
            if p in to_load and payload:
                processor.dedup.load(p, key, payload)
        # Counts whose emission a crash cut short: re-emitting is idempotent and a stale value
        # can never win (its version, a position, is lower), so emit every owned key again.
        # Not under exactly-once: emission commits with the state, and a transaction holding
        # only these (no offsets) would stay open, hiding later counts from read_committed
        # consumers, until the broker aborted it.
        if not self._app.in_transaction:
            for key, value in processor.count_records(owned):
                await self._output.send(self._topic_counts, key, value, source_partition=int(key))
        log.info(
            "state loaded: %d window keys, %d dedup ids, partitions %s",
            loaded, processor.dedup.size, sorted(owned),
        )  # fmt: skip
        if self._trace:
            per_partition: dict[int, int] = {}
            for bucket in list(processor.counter.store.keys()):
                p = int(str(bucket).split(":", 1)[0])
                per_partition[p] = per_partition.get(p, 0) + len(processor.counter.store[bucket])
            committed = committed_offsets(self._app)
            log.info("keys per partition %s; committed offsets %s", per_partition, committed)


class RecoveryWatch:
    """faust's recovery was seen to wait forever for the changelog partitions it had just
    sought, while /healthz still answered (test_rebalance_crash_duplicates_and_catalog, about
    1 run in 4; faust only logs "No event received for active tp"), as seeks issued while a
    rebalance settles were seen to be lost for the raw topic. Partitions that make no progress
    are sought again; a recovery still stuck after RECOVERY_STALL_S stops the worker, so that
    the group hands its partitions on and an orchestrator restarts it."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._offsets: dict[Any, Any] | None = None
        self._since = self._sought = 0.0

    async def check(self, now: float) -> None:
        recovery = self._app.tables.recovery
        if not recovery.in_recovery:
            self._offsets = None
            return
        offsets = dict(recovery.active_offsets)
        if self._offsets != offsets:
            self._offsets, self._since, self._sought = offsets, now, now
            return
        read = {tp: -1 if offsets.get(tp) is None else offsets[tp] for tp in offsets}
        behind = {
            tp: at
            for tp, end in recovery.active_highwaters.items()
            if end is not None and (at := read.get(tp, -1)) < end - 1
        }
        if now - self._since > RECOVERY_STALL_S:
            log.error(
                "table recovery made no progress for %.0f s (changelog positions %s); stopping "
                "so that the partitions move on",
                RECOVERY_STALL_S, {f"{tp.topic}[{tp.partition}]": o for tp, o in behind.items()},
            )  # fmt: skip
            await self._app.crash(StreamsError("table recovery stalled"))
        elif now - self._sought > RECOVERY_RESEEK_S:
            self._sought = now
            for tp, offset in behind.items():
                at = offset + 1  # the next record; 0 for a partition read from the start
                log.warning("recovery of %s[%s] is stuck; seeking it to %s", tp.topic,
                            tp.partition, at)  # fmt: skip
                await self._app.consumer.seek(tp, at)
