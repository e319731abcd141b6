"""Per-instance token buckets: each Backstage instance may send ``rate`` events per second on
average, in bursts of up to ``burst`` (pure; the clock is injected)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, amount: int) -> float:
        """Take ``amount`` tokens; 0.0 if granted, else the seconds until they would be."""
        now = self._clock()
        bucket = self._buckets.setdefault(key, _Bucket(self.burst, now))
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if amount <= bucket.tokens:
            bucket.tokens -= amount
            return 0.0
        if amount > self.burst:  # can never be granted at once: the caller must split it
            return float("inf")
        return (amount - bucket.tokens) / self.rate
