"""A sink batch: per partition, the run of consecutive messages consumed since the last flush
(pure).

Each partition's run is inserted on its own under the token ``topic:partition:first-last``, so
the token names a fixed offset range: whoever inserts that range again (a retry, or the next
owner of the partition after a crash, see ``intents``) produces the same token and ClickHouse
drops the repeat. A batch is due when it holds ``max_rows`` rows or its oldest message is
``max_age_s`` old.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Run:
    """Messages of one partition, in offset order, from ``first`` to ``last``."""

    partition: int
    first: int
    last: int
    messages: list[Any] = field(default_factory=list)
    rows: int = 0
    repeats: int = 0  # offsets taken with nothing to write

    def token(self, topic: str) -> str:
        return f"{topic}:{self.partition}:{self.first}-{self.last}"


@dataclass
class Batch:
    max_rows: int
    max_age_s: float
    runs: dict[int, Run] = field(default_factory=dict)
    rows: int = 0
    started_at: float | None = None

    def __len__(self) -> int:
        return self.rows

    def add(self, partition: int, offset: int, message: Any, rows: int, now: float) -> Run:
        """Add one consumed message (``rows``: the rows it is expected to hold). A ``message``
        of None takes the offset into the run with nothing to write (a repeat)."""
        if self.started_at is None:
            self.started_at = now
        run = self.runs.get(partition)
        if run is None:
            run = self.runs[partition] = Run(partition, offset, offset)
        elif offset <= run.last:  # gaps are fine (transaction markers); going back is not
            raise ValueError(f"partition {partition}: offset {offset} after {run.last}")
        run.last = offset
        if message is not None:
            run.messages.append(message)
        else:
            run.repeats += 1
        run.rows += rows
        self.rows += rows
        return run

    def due(self, now: float) -> bool:
        if self.rows >= self.max_rows:
            return True
        return self.started_at is not None and now - self.started_at >= self.max_age_s

    @property
    def empty(self) -> bool:
        return not self.runs

    def take(self, partitions: set[int] | None = None) -> list[Run]:
        """Remove and return the runs of ``partitions`` (all when None), in partition order."""
        chosen = sorted(p for p in self.runs if partitions is None or p in partitions)
        runs = [self.runs.pop(p) for p in chosen]
        self.rows -= sum(r.rows for r in runs)
        if not self.runs:
            self.started_at = None
        return runs

    def drop(self, partitions: set[int]) -> None:
        """Forget what was consumed from ``partitions`` (revoked before it could be written)."""
        self.take(partitions)
