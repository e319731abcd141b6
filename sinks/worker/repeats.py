"""Messages a streams worker sent twice, recognised by where they came from (pure).

A streams worker killed between forwarding a raw message and its next flush leaves enriched
events and dead letters that its successor forwards again (it re-reads the raw messages the
dead worker had not committed). Both copies carry the same source coordinates in their headers
(``pulse.source.topic|partition|offset``, and ``pulse.source.batch_index`` for a dead letter
split out of an envelope), and, being keyed alike, land on the same partition of the topic the
sink reads, a little apart. ``events`` would drop the repeat only at merge time
(``ReplacingMergeTree``), while the rollup views and ``dead_letters`` would keep it, so the
sink recognises it before inserting.

Per partition the filter remembers the identities of the last ``window`` messages it took. A
sink that (re)starts on a partition reads the ``window`` messages before its start offset
first, only to remember them, so its decisions are the ones the previous owner made.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from schemas.dead_letters import (
    HEADER_BATCH_INDEX,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
)

Identity = tuple[str, int, int, int]
_KEYS = (HEADER_SOURCE_TOPIC, HEADER_SOURCE_PARTITION, HEADER_SOURCE_OFFSET, HEADER_BATCH_INDEX)


def identity(headers: Iterable[tuple[str, bytes | None]] | None) -> Identity | None:
    """The source coordinates a message names, or None if it names none (a producer writing
    straight to the topic). The last value of a header counts: a stage that re-sends a message
    adds its own coordinates after the ones it kept."""
    found: dict[str, bytes | None] = {}
    for key, value in headers or ():
        if key in _KEYS:
            found[key] = value
    try:
        return (
            (found[HEADER_SOURCE_TOPIC] or b"").decode("utf-8", "replace"),
            int(found[HEADER_SOURCE_PARTITION] or b""),
            int(found[HEADER_SOURCE_OFFSET] or b""),
            int(found.get(HEADER_BATCH_INDEX) or b"-1"),
        )
    except (KeyError, ValueError):
        return None


class RepeatFilter:
    def __init__(self, window: int) -> None:
        self.window = window
        self._parts: dict[int, tuple[deque[Identity], set[Identity]]] = {}

    def repeated(self, partition: int, ident: Identity | None) -> bool:
        """Whether a message with this identity was taken already; if not, remember it."""
        if ident is None or self.window <= 0:
            return False
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = (deque(), set())
        order, members = part
        if ident in members:
            return True
        order.append(ident)
        members.add(ident)
        if len(order) > self.window:
            members.discard(order.popleft())
        return False

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._parts.pop(p, None)
