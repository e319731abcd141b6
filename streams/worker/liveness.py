"""What makes no progress in the worker, for its liveness and readiness pages and metrics.

A flush that waits past its deadline stops the worker by itself; this also catches what no
flush sees: messages that wait to be flushed because the agent or the timer is stuck, and
owned partitions whose position does not move while messages wait."""

from __future__ import annotations

import time

from streams.metrics import StreamsMetrics
from streams.worker.flush import Flush
from streams.worker.sequence import StallWatch


class Liveness:
    def __init__(
        self, flush: Flush, stalls: StallWatch, bound_s: float, metrics: StreamsMetrics
    ) -> None:
        """``bound_s``: how long anything may make no progress (the flush deadline)."""
        self._flush, self._stalls, self._bound_s = flush, stalls, bound_s
        metrics.oldest_unflushed.set_function(lambda: flush.unflushed.age_s(time.monotonic()))
        metrics.stalled_partitions.set_function(
            lambda: len(stalls.stalled(time.monotonic(), bound_s))
        )

    def problems(self) -> list[str]:
        """What has made no progress for longer than the bound; empty when all is well."""
        now, bound = time.monotonic(), self._bound_s
        found = []
        if (running := self._flush.stuck_s(now)) > bound:
            found.append(f"a flush has waited {running:.0f} s")
        if (oldest := self._flush.unflushed.age_s(now)) > bound:
            found.append(f"a message has waited {oldest:.0f} s to be flushed")
        if stalled := self._stalls.stalled(now, bound):
            found.append(f"no progress with messages waiting: {', '.join(stalled)}")
        return found
