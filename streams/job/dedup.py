"""Per-partition de-duplication of event ids within an event-time horizon (pure).

Events are keyed by session, so a re-sent event (client or collector retry) lands on the
partition of its first copy. Each partition keeps the ids it saw with their *position* (source
offset and index in the message): the same id at the same position is a replay of the same
message after a restart (it may still need counting), the same id at another position is a
duplicate (dropped). Ids are kept in chunks of one flush interval; a chunk is persisted once
(to the worker's changelog-backed table) by the flush that creates it, and deleted when its
newest event falls out of the horizon behind the partition's event-time watermark. Memory is
bounded by ``max_ids``: past it the oldest chunks go early (counted in ``evicted_early``), so the
horizon shrinks instead of memory growing.

In memory an id is its 64-bit ``hash`` (a collision, about 1e-8 per million live ids, would
drop one event as a duplicate); chunks persist the ids themselves.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

CHUNK_IDS = 8000
"""Ids per persisted chunk: ~400 KB, under Kafka's default 1 MB message limit however many
events one flush covers."""


class Seen(enum.Enum):
    NEW = "new"
    REPLAY = "replay"  # this very message again (redelivery after a crash or rebalance)
    DUPLICATE = "duplicate"  # the same event in another message (a retry)


@dataclass
class _Chunk:
    key: str
    newest: int  # highest event time in the chunk
    hashes: list[int]


@dataclass
class _Partition:
    seen: dict[int, int] = field(default_factory=dict)  # hash -> position
    chunks: deque[_Chunk] = field(default_factory=deque)
    pending: list[tuple[str, int]] = field(default_factory=list)  # (id, position)
    pending_newest: int = 0

    def close(self, partition: int) -> list[tuple[str, str]]:
        """The ids pending since the last flush, closed into chunks: (key, payload)."""
        out = []
        for i in range(0, len(self.pending), CHUNK_IDS):
            entries = self.pending[i : i + CHUNK_IDS]
            key = f"{partition}:{entries[0][1]}"
            hashes = [hash(event_id) for event_id, _ in entries]
            self.chunks.append(_Chunk(key, self.pending_newest, hashes))
            out.append((key, encode_chunk(self.pending_newest, entries)))
        self.pending = []
        self.pending_newest = 0
        return out


def encode_chunk(newest: int, entries: list[tuple[str, int]]) -> str:
    """A chunk as one string (a JSON-safe table value): newest event time, then id,position."""
    return "\n".join([str(newest), *(f"{i},{p}" for i, p in entries)])


def decode_chunk(payload: str) -> tuple[int, list[tuple[str, int]]]:
    newest, *lines = payload.split("\n")
    entries = []
    for line in lines:
        event_id, _, pos = line.rpartition(",")
        entries.append((event_id, int(pos)))
    return int(newest), entries


class Deduplicator:
    def __init__(self, horizon_ms: int, max_ids: int) -> None:
        self.horizon_ms = horizon_ms
        self.max_ids = max_ids
        self.size = 0
        self.evicted_early = 0
        self._parts: dict[int, _Partition] = {}

    def check(self, partition: int, event_id: str, event_time: int, pos: int) -> Seen:
        """Whether the id was seen; a new id is remembered."""
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = _Partition()
        h = hash(event_id)
        first = part.seen.get(h)
        if first is not None:
            return Seen.REPLAY if first == pos else Seen.DUPLICATE
        part.seen[h] = pos
        part.pending.append((event_id, pos))
        if event_time > part.pending_newest:
            part.pending_newest = event_time
        self.size += 1
        return Seen.NEW

    def take_chunks(self) -> list[tuple[int, str, str]]:
        """Close the ids seen since the last call into chunks: (partition, key, payload)."""
        return [
            (p, key, payload) for p, part in self._parts.items() for key, payload in part.close(p)
        ]

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
        for h in chunk.hashes:
            if part.seen.pop(h, None) is not None:
                self.size -= 1
        return chunk.key

    def load(self, partition: int, key: str, payload: str) -> None:
        """Restore a persisted chunk (after recovery). Chunks may come in any order."""
        newest, entries = decode_chunk(payload)
        part = self._parts.setdefault(partition, _Partition())
        hashes = []
        for event_id, pos in entries:
            h = hash(event_id)
            hashes.append(h)
            if h not in part.seen:
                part.seen[h] = pos
                self.size += 1
        part.chunks.append(_Chunk(key, newest, hashes))
        part.chunks = deque(sorted(part.chunks, key=lambda c: int(c.key.split(":")[1])))

    def forget(self, partitions: set[int]) -> None:
        for p in partitions:
            part = self._parts.pop(p, None)
            if part is not None:
                self.size -= len(part.seen)

    def partitions(self) -> set[int]:
        return set(self._parts)
