"""A sink batch: rows gathered column-wise with the offsets they came from (pure).

Flushed when it holds ``max_rows`` rows or its first row is ``max_age_s`` old. After ClickHouse
acknowledges the insert, :meth:`Batch.commit_offsets` tells what to commit: for each partition,
the offset after the last message seen (including messages that went to the dead-letter topic).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Batch:
    columns: tuple[str, ...]
    max_rows: int
    max_age_s: float
    data: list[list[Any]] = field(init=False)
    sources: list[Any] = field(default_factory=list)  # per row: where it came from
    rows: int = 0
    started_at: float | None = None
    # partition -> (first offset, last offset) seen in this batch
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = [[] for _ in self.columns]

    def __len__(self) -> int:
        return self.rows

    def track(self, partition: int, offset: int, now: float) -> None:
        """Record that a message was consumed (whether or not it became a row)."""
        if self.started_at is None:
            self.started_at = now
        first, _ = self.ranges.get(partition, (offset, offset))
        self.ranges[partition] = (first, offset)

    def add(self, record: dict[str, Any], source: Any = None) -> None:
        for column, name in zip(self.data, self.columns, strict=True):
            column.append(record[name])
        self.sources.append(source)
        self.rows += 1

    def slice(self, lo: int, hi: int) -> list[list[Any]]:
        """Rows ``lo:hi`` as columns (to isolate rows ClickHouse rejects)."""
        return [column[lo:hi] for column in self.data]

    def due(self, now: float) -> bool:
        if self.rows >= self.max_rows:
            return True
        return self.started_at is not None and now - self.started_at >= self.max_age_s

    @property
    def empty(self) -> bool:
        return not self.ranges

    def dedup_token(self, topic: str) -> str:
        """Identifies this exact set of messages, so a retried insert is dropped by ClickHouse."""
        ranges = ",".join(f"{p}:{a}-{b}" for p, (a, b) in sorted(self.ranges.items()))
        return f"{topic}/{ranges}"

    def commit_offsets(self) -> dict[int, int]:
        return {p: last + 1 for p, (_, last) in self.ranges.items()}
