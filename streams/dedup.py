"""Per-partition de-duplication of event ids within an event-time horizon (pure).

Events are keyed by session, so a re-sent event (client or collector retry, replay) lands on the
partition of its first copy. Each partition keeps the ids it saw, in chunks of one flush
interval; a chunk is persisted once (to the worker's changelog-backed table) when the flush
that created it runs, and deleted when its newest event falls out of the horizon behind the
partition's event-time watermark. Memory is bounded by ``max_ids``: past it the oldest chunks go
early (counted in ``evicted_early``), so the horizon shrinks instead of memory growing.

In memory an id is its 64-bit ``hash`` (a collision, about 1e-8 per million live ids, would
drop one event as a duplicate); chunks persist the ids themselves.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class _Chunk:
    key: str
    newest: int  # highest event time in the chunk
    hashes: list[int]


@dataclass
class _Partition:
    seen: set[int] = field(default_factory=set)
    chunks: deque[_Chunk] = field(default_factory=deque)
    pending: list[str] = field(default_factory=list)
    pending_first: int = -1  # position of the first pending id
    pending_newest: int = 0


def encode_chunk(newest: int, ids: list[str]) -> bytes:
    return ("\n".join([str(newest), *ids])).encode()


def decode_chunk(payload: bytes) -> tuple[int, list[str]]:
    newest, *ids = payload.decode().split("\n")
    return int(newest), ids


class Deduplicator:
    def __init__(self, horizon_ms: int, max_ids: int) -> None:
        self.horizon_ms = horizon_ms
        self.max_ids = max_ids
        self.size = 0
        self.evicted_early = 0
        self._parts: dict[int, _Partition] = {}

    def seen(self, partition: int, event_id: str, event_time: int, pos: int) -> bool:
        """True if the id was seen (a duplicate); else remember it and return False."""
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = _Partition()
        h = hash(event_id)
        if h in part.seen:
            return True
        part.seen.add(h)
        if not part.pending:
            part.pending_first = pos
        part.pending.append(event_id)
        if event_time > part.pending_newest:
            part.pending_newest = event_time
        self.size += 1
        return False

    def take_chunks(self) -> list[tuple[int, str, bytes]]:
        """Close the ids seen since the last call into chunks: (partition, key, payload)."""
        out = []
        for p, part in self._parts.items():
            if not part.pending:
                continue
            key = f"{p}:{part.pending_first}"
            part.chunks.append(_Chunk(key, part.pending_newest, [hash(i) for i in part.pending]))
            out.append((p, key, encode_chunk(part.pending_newest, part.pending)))
            part.pending = []
            part.pending_newest = 0
        return out

    def expire(self, watermarks: dict[int, int]) -> list[tuple[int, str]]:
        """Drop chunks behind the horizon, then the oldest past ``max_ids``: (partition, key)."""
        gone = []
        for p, part in self._parts.items():
            cutoff = watermarks.get(p, 0) - self.horizon_ms
            while part.chunks and part.chunks[0].newest < cutoff:
                gone.append((p, self._drop_oldest(part)))
        while self.size > self.max_ids:
            p, part = max(self._parts.items(), key=lambda item: len(item[1].seen))
            if not part.chunks:
                break
            gone.append((p, self._drop_oldest(part)))
            self.evicted_early += 1
        return gone

    def _drop_oldest(self, part: _Partition) -> str:
        chunk = part.chunks.popleft()
        part.seen.difference_update(chunk.hashes)
        self.size -= len(chunk.hashes)
        return chunk.key

    def load(self, partition: int, key: str, payload: bytes) -> None:
        """Restore a persisted chunk (after recovery). Chunks may come in any order."""
        newest, ids = decode_chunk(payload)
        part = self._parts.setdefault(partition, _Partition())
        hashes = [hash(i) for i in ids]
        part.seen.update(hashes)
        part.chunks.append(_Chunk(key, newest, hashes))
        part.chunks = deque(sorted(part.chunks, key=lambda c: int(c.key.split(":")[1])))
        self.size += len(hashes)

    def forget(self, partitions: set[int]) -> None:
        for p in partitions:
            part = self._parts.pop(p, None)
            if part is not None:
                self.size -= len(part.seen)

    def partitions(self) -> set[int]:
        return set(self._parts)
