"""Event-time tumbling window counts, per source partition, replay-safe (pure).

A window key is (window start, instance, plugin, extension, action, source partition). Each
key's state holds its absolute count, the sum of ``value`` and the source offset of the last
event counted. Offsets only grow within a partition, so an event at or below that offset was
already counted (a replay after a crash or rebalance) and is skipped: counts stay exact under
at-least-once delivery without transactions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WindowKey:
    window_start: int
    instance_id: str
    plugin_id: str
    extension: str
    action: str
    source_partition: int

    def encode(self) -> str:
        """A stable, unambiguous string (table and message key)."""
        return json.dumps(
            [
                self.window_start,
                self.instance_id,
                self.plugin_id,
                self.extension,
                self.action,
                self.source_partition,
            ],
            separators=(",", ":"),
        )

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


def apply(state: dict[str, Any] | None, offset: int, value: float | None) -> dict[str, Any] | None:
    """The key's new state after counting one event, or None if it was counted already."""
    if state is not None and offset <= state["offset"]:
        return None
    count = state["count"] if state else 0
    total = state["sum"] if state else 0.0
    return {"count": count + 1, "sum": total + (value or 0.0), "offset": offset}


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
