"""Latency judgements: when it is back to normal after a fault, how long nothing was stored
(pure)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping


def normal_threshold_ms(steady_p99_ms: float) -> float:
    """A second is normal when its p99 is within twice the fault-free p99 (at least +250 ms)."""
    return max(2 * steady_p99_ms, steady_p99_ms + 250)


def recovery_s(
    p99_by_second: Mapping[int, float],
    fault_at_s: float,
    threshold_ms: float,
    until_s: float,
    hold_s: int = 3,
) -> float | None:
    """Seconds from the fault until the first of ``hold_s`` consecutive normal seconds (events
    produced in each, their p99 at most ``threshold_ms``); None if that never happens before
    ``until_s`` (the next fault or the end of the load)."""
    start = int(fault_at_s)
    for second in range(start, int(until_s) - hold_s + 1):
        window = [p99_by_second.get(s) for s in range(second, second + hold_s)]
        if all(p is not None and p <= threshold_ms for p in window):
            return max(0.0, second - fault_at_s)
    return None


def longest_silence_s(stored_seconds: Iterable[int], start_s: float, end_s: float) -> float:
    """The longest stretch of [start_s, end_s) in which no event was stored, given the
    seconds (unix) in which events were stored."""
    marks = sorted(s for s in set(stored_seconds) if start_s <= s < end_s)
    edges = [start_s, *marks, end_s]
    return max(b - a for a, b in itertools.pairwise(edges))
