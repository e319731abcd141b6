"""What one flush must persist and send, collected from the job's state (pure)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas import WINDOW_COUNT_BATCH, Encoder, default_catalog
from streams.job import windows
from streams.job.dedup import Deduplicator
from streams.metrics import StreamsMetrics

COUNTS_PER_MESSAGE = 5000  # ~500 KB: under Kafka's default 1 MB message limit


@dataclass
class Flush:
    """What one flush must persist and send, in this order (see ``streams.worker.flush``)."""

    count_states: list[tuple[int, str, dict[str, Any] | None]]  # (partition, bucket, states)
    dedup_chunks: list[tuple[int, str, str | None]]  # (partition, key, payload|None)
    count_records: list[tuple[bytes, bytes]]  # (partition, WindowCountBatch) for counts topic


class Changes:
    def __init__(
        self,
        counter: windows.WindowCounter,
        dedup: Deduplicator,
        metrics: StreamsMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._counter, self._dedup, self._metrics, self._clock = counter, dedup, metrics, clock
        self._encode_counts = Encoder(default_catalog().latest(WINDOW_COUNT_BATCH))

    def flush(self) -> Flush:
        """Collect everything changed since the last flush (synchronously: atomic in asyncio)."""
        # Changed counts before expiry: a window that expires in this flush still has its last
        # count emitted (test_every_forwarded_event_is_in_one_emitted_count_or_counted_late).
        buckets, keys = self._counter.take_dirty()
        expired = self._counter.expire()
        states: list[tuple[int, str, dict[str, Any] | None]] = [
            (windows.bucket_partition(b), b, dict(s)) for b, s in buckets
        ]
        states.extend((p, b, None) for p, b in expired)
        chunks: list[tuple[int, str, str | None]] = list(self._dedup.take_chunks())
        chunks.extend((p, k, None) for p, k in self._dedup.expire(self._counter.watermark))
        self._metrics.window_keys.set(len(self._counter))
        self._metrics.dedup_ids.set(self._dedup.size)
        return Flush(states, chunks, self.count_messages(keys))

    def count_messages(self, keys: list[tuple[str, Any]]) -> list[tuple[bytes, bytes]]:
        """One WindowCountBatch per source partition (key = the partition)."""
        now_ms = int(self._clock() * 1000)
        window_ms = self._counter.size_ms
        by_partition: dict[int, list[dict[str, Any]]] = {}
        for text, state in keys:
            key = windows.WindowKey.decode(text)
            record = windows.to_record(key, state, window_ms, now_ms)
            by_partition.setdefault(key.source_partition, []).append(record)
        out = []
        for p, records in by_partition.items():
            for i in range(0, len(records), COUNTS_PER_MESSAGE):
                chunk = records[i : i + COUNTS_PER_MESSAGE]
                out.append((str(p).encode(), self._encode_counts({"counts": chunk})))
        return out
