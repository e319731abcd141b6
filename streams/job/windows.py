"""Event-time tumbling window counts, per source partition, replay-safe (pure).

A window key is (window start, instance, plugin, extension, action, source partition). Its state
holds the absolute count, the sum of ``value`` and the *position* of the last event counted
(source offset << 10 | index in the message's batch). Positions only grow within a partition,
so an event at or below that position was already counted (a replay after a crash or a
rebalance) and is skipped: counts stay exact under at-least-once delivery, without transactions.

State lives in a key-value store (the worker's changelog-backed table) in buckets of keys;
changes are collected as "dirty" buckets and keys and written out once per flush, not once per
event.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, NamedTuple

POSITION_BITS = 10
MAX_BATCH_EVENTS = 1 << POSITION_BITS


def position(offset: int, index: int) -> int:
    return (offset << POSITION_BITS) | index


class WindowKey(NamedTuple):
    window_start: int
    instance_id: str
    plugin_id: str
    extension: str
    action: str
    source_partition: int

    def encode(self) -> str:
        """A stable, unambiguous string (table key and message key)."""
        return json.dumps(list(self), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> WindowKey:
        return cls(*json.loads(text))


def window_start(event_time_ms: int, size_ms: int) -> int:
    return event_time_ms - event_time_ms % size_ms


def key_for(enriched: dict[str, Any], size_ms: int) -> WindowKey:
    return WindowKey(
        window_start(enriched["event_time"], size_ms),
        enriched["instance_id"],
        enriched["plugin_id"],
        enriched["extension"],
        enriched["action"],
        enriched["source_partition"],
    )


def apply(state: dict[str, Any] | None, pos: int, value: float | None) -> dict[str, Any] | None:
    """The key's new state after counting one event, or None if it was counted already."""
    if state is not None and pos <= state["offset"]:
        return None
    count = state["count"] if state else 0
    total = state["sum"] if state else 0.0
    return {"count": count + 1, "sum": total + (value or 0.0), "offset": pos}


def to_record(key: WindowKey, state: dict[str, Any], size_ms: int, now_ms: int) -> dict[str, Any]:
    """The WindowCount record for one key's state."""
    return {
        "window_start": key.window_start,
        "window_size_ms": size_ms,
        "instance_id": key.instance_id,
        "plugin_id": key.plugin_id,
        "extension": key.extension,
        "action": key.action,
        "source_partition": key.source_partition,
        "event_count": state["count"],
        "value_sum": state["sum"],
        "version": state["offset"],
        "emitted_at": now_ms,
    }


@dataclass
class AddResult:
    counted: bool
    late: bool = False  # older than the retention: not counted, still forwarded
    replay: bool = False


SHARDS = 4
"""Buckets per (partition, window): a bucket is one changelog record, so a flush writes a few
records per changed window instead of one per key, and no record grows past a few tens of KB."""


def bucket_name(partition: int, start: int, text: str) -> str:
    return f"{partition}:{start}:{zlib.crc32(text.encode()) % SHARDS}"


def bucket_partition(bucket: str) -> int:
    return int(bucket.split(":", 1)[0])


class WindowCounter:
    """Live window counts of the partitions this worker owns.

    The store maps a bucket (partition, window start, shard) to ``{key text: state}``; it is the
    worker's changelog-backed table, so a bucket is persisted and recovered as one record.
    """

    def __init__(self, store: MutableMapping[str, Any], size_ms: int, retention_ms: int) -> None:
        self.store, self.size_ms, self.retention_ms = store, size_ms, retention_ms
        self.dirty_buckets: set[str] = set()
        self.dirty_keys: set[tuple[str, str]] = set()  # (bucket, key text)
        self.watermark: dict[int, int] = {}  # partition -> highest event time seen
        self._index = _Index()
        self._names: dict[WindowKey, tuple[str, str]] = {}  # key -> (text, bucket), a cache

    def add(self, key: WindowKey, pos: int, value: float | None, event_time: int) -> AddResult:
        p = key.source_partition
        mark = self.watermark.get(p, 0)
        if event_time > mark:
            self.watermark[p] = mark = event_time
        if key.window_start + self.size_ms + self.retention_ms <= mark:
            return AddResult(counted=False, late=True)
        names = self._names.get(key)
        if names is None:
            text = key.encode()
            names = self._names[key] = (text, bucket_name(p, key.window_start, text))
        text, bucket = names
        states = self.store.get(bucket)
        if states is None:
            states = self.store[bucket] = {}
            self._index.add(p, key.window_start, bucket)
        state = apply(states.get(text), pos, value)
        if state is None:
            return AddResult(counted=False, replay=True)
        states[text] = state
        self.dirty_buckets.add(bucket)
        self.dirty_keys.add(names)  # (text, bucket)
        return AddResult(counted=True)

    def expire(self) -> list[tuple[int, str]]:
        """Drop windows older than the retention; return (partition, bucket) to delete."""
        gone = self._index.expire(self.watermark, self.size_ms + self.retention_ms)
        for _, bucket in gone:
            self.store.pop(bucket, None)
            self.dirty_buckets.discard(bucket)
        if gone:
            gone_set = {b for _, b in gone}
            self.dirty_keys = {n for n in self.dirty_keys if n[1] not in gone_set}
            self._names = {k: n for k, n in self._names.items() if n[1] not in gone_set}
        return gone

    def take_dirty(self) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, Any]]]:
        """(changed buckets with their states, changed keys with their state)."""
        buckets = [(b, self.store[b]) for b in self.dirty_buckets if b in self.store]
        store = self.store
        keys = [(t, store[b][t]) for t, b in self.dirty_keys if b in store and t in store[b]]
        self.dirty_buckets.clear()
        self.dirty_keys.clear()
        return buckets, keys

    def states(self, partitions: set[int]) -> list[tuple[str, dict[str, Any]]]:
        """Every key's state in the given partitions (for re-emission after recovery)."""
        buckets = [b for b in list(self.store.keys()) if bucket_partition(b) in partitions]
        return [item for b in buckets for item in self.store[b].items()]

    def reindex(self, partitions: set[int]) -> int:
        """Rebuild the expiry index from the store (after recovery); return keys indexed."""
        return sum(len(self.store[b]) for b in self._index.rebuild(self.store, partitions))

    def forget(self, partitions: set[int]) -> None:
        for p in partitions:
            self._index.forget(p)
            self.watermark.pop(p, None)

    def __len__(self) -> int:
        return sum(len(self.store.get(b) or ()) for b in self._index.buckets())


class _Index:
    """The buckets of each partition's windows, by window start, for expiry."""

    def __init__(self) -> None:
        self._windows: dict[int, dict[int, set[str]]] = {}  # partition -> start -> buckets

    def add(self, partition: int, start: int, bucket: str) -> None:
        self._windows.setdefault(partition, {}).setdefault(start, set()).add(bucket)

    def expire(self, watermark: dict[int, int], kept_ms: int) -> list[tuple[int, str]]:
        """Remove and return (partition, bucket) of windows that ended ``kept_ms`` before
        their partition's watermark."""
        gone = []
        for p, windows in self._windows.items():
            cutoff = watermark.get(p, 0) - kept_ms
            for start in [s for s in windows if s <= cutoff]:
                gone.extend((p, bucket) for bucket in windows.pop(start))
        return gone

    def rebuild(self, store: MutableMapping[str, Any], partitions: set[int]) -> list[str]:
        """Index the buckets of these partitions in ``store``; return them."""
        found = []
        for bucket in list(store.keys()):
            p, start, _ = bucket.split(":")
            if int(p) in partitions:
                self.add(int(p), int(start), bucket)
                found.append(bucket)
        return found

    def forget(self, partition: int) -> None:
        self._windows.pop(partition, None)

    def buckets(self) -> list[str]:
        return [b for windows in self._windows.values() for bs in windows.values() for b in bs]
