"""One raw message in, its outcomes out: the whole streams job without faust (pure logic
over injected state), so it is unit-tested and benchmarked without a broker.

Per message: size check, decode (single event or batch envelope), then per event: the erasure
check (an erased person's events are dead-lettered, keyed id only), validate, de-duplicate,
enrich, count. Good events leave as one EnrichedEventBatch; each bad one as a dead
letter (a bad *message* keeps its original bytes; a bad event inside a batch is re-encoded alone
and says which index it was). Ledger: events in = forwarded + dead-lettered + duplicates +
replayed (a message seen again after a restart, already forwarded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from schemas import (
    ANALYTICS_EVENT,
    ANALYTICS_EVENT_BATCH,
    ENRICHED_EVENT_BATCH,
    Decoder,
    Encoder,
    SchemaError,
    default_catalog,
)
from schemas.dead_letters import STAGE_VALIDATE, source_headers
from schemas.identity import Pseudonymizer
from streams.job import windows
from streams.job.changes import Changes, Flush
from streams.job.dedup import Deduplicator, Seen
from streams.job.enrich import PeopleLookup, PluginLookup, enrich, no_people, no_plugins
from streams.job.rejections import DeadLetter, Rejections
from streams.job.validate import Limits, ValidationError, validate
from streams.metrics import StreamsMetrics

Headers = list[tuple[str, bytes]]
# The keyed ids of erased people (a started TopicTable of pulse.erasures): ``id in erased``, and
# falsy while it holds none, so the check costs nothing until someone is erased.
Erased = Collection[str]
no_erasures: Erased = frozenset()
__all__ = ["DeadLetter", "Flush", "Outcome", "Processor"]


@dataclass
class Outcome:
    enriched: bytes | None = None  # one EnrichedEventBatch, or None when no event was good
    # Its source coordinates: a sink recognises by them a message forwarded twice (a worker
    # killed before its flush leaves messages its successor forwards again).
    enriched_headers: Headers = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events_out: int = 0


class Processor:
    def __init__(
        self,
        *,
        secret: bytes,
        limits: Limits,
        window_ms: int,
        retention_ms: int,
        dedup_horizon_ms: int,
        dedup_max_ids: int,
        counts_store: MutableMapping[str, Any],
        plugins: PluginLookup = no_plugins,
        people: PeopleLookup = no_people,
        erased: Erased = no_erasures,
        metrics: StreamsMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits
        self.counter = windows.WindowCounter(counts_store, window_ms, retention_ms)
        self.dedup = Deduplicator(dedup_horizon_ms, dedup_max_ids)
        self.metrics = metrics or StreamsMetrics()
        self._decode = Decoder(default_catalog(), [ANALYTICS_EVENT, ANALYTICS_EVENT_BATCH])
        self.rejections = Rejections(self.metrics)
        lookups = (plugins, people, erased)
        self._events = EventPath(self, Pseudonymizer(secret), lookups, window_ms, clock)
        self._changes = Changes(self.counter, self.dedup, self.metrics, clock)
        self._messages_in: dict[str, Any] = {}

    def process(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        topic: str,
        partition: int,
        offset: int,
    ) -> Outcome:
        counter = self._messages_in.get(topic)
        if counter is None:  # a child per topic: labels() is a locked lookup per call
            counter = self._messages_in[topic] = self.metrics.messages_in.labels(topic)
        counter.inc()
        coords = {"topic": topic, "partition": partition, "offset": offset}
        data, limits = value or b"", self.limits
        if len(data) > limits.max_message_bytes:
            detail = f"{len(data)} B, at most {limits.max_message_bytes}"
            return self._rejected(key, value, headers, coords, "oversize_message", detail)
        try:
            decoded = self._decode.decode(data)
        except SchemaError as exc:
            return self._rejected(key, value, headers, coords, exc.reason, str(exc))
        is_batch = decoded.writer.name == ANALYTICS_EVENT_BATCH
        raws = decoded.record["events"] if is_batch else [decoded.record]
        if len(raws) > min(limits.max_batch_events, windows.MAX_BATCH_EVENTS):
            detail = f"{len(raws)} events, at most {limits.max_batch_events}"
            return self._rejected(key, value, headers, coords, "too_many_events", detail)
        self.metrics.events_in.inc(len(raws))
        outcome = Outcome()
        try:
            good = self._events(raws, is_batch, key, headers, coords, outcome.dead_letters)
        except ValidationError as exc:  # the message was this one event: keep its bytes
            reason, detail = exc.reason, exc.detail
            return self._rejected(key, value, headers, coords, reason, detail, STAGE_VALIDATE)
        if good:
            outcome.enriched = self._events.encode({"events": good})
            outcome.enriched_headers = source_headers(topic, partition, offset)
            outcome.events_out = len(good)
        return outcome

    def _rejected(self, *args: Any) -> Outcome:
        return Outcome(dead_letters=[self.rejections.message(*args)])

    def flush(self) -> Flush:
        """Collect everything changed since the last flush (synchronously: atomic in asyncio)."""
        return self._changes.flush()

    def count_records(self, partitions: set[int]) -> list[tuple[bytes, bytes]]:
        """Every count of these partitions (re-emission after a rebalance)."""
        return self._changes.count_messages(self.counter.states(partitions))


class EventPath:
    """Each event of a message: validated, de-duplicated, enriched, counted."""

    def __init__(
        self,
        processor: Processor,
        pseudonymize: Pseudonymizer,
        lookups: tuple[PluginLookup, PeopleLookup, Erased],
        window_ms: int,
        clock: Callable[[], float],
    ) -> None:
        self._limits, self._metrics = processor.limits, processor.metrics
        self._dedup, self._counter = processor.dedup, processor.counter
        self._reject = processor.rejections
        self._pseudonymize = pseudonymize
        self._plugins, self._people, self._erased = lookups
        self._window_ms, self._clock = window_ms, clock
        self.encode = Encoder(default_catalog().latest(ENRICHED_EVENT_BATCH))

    def __call__(
        self,
        raws: list[dict[str, Any]],
        is_batch: bool,
        key: bytes | None,
        headers: Headers | None,
        coords: dict[str, Any],
        dead_letters: list[DeadLetter],
    ) -> list[dict[str, Any]]:
        """The events to forward; bad ones of a batch go to ``dead_letters``. Raises
        ValidationError when the message was one bad event."""
        m, partition, offset = self._metrics, coords["partition"], coords["offset"]
        now_ms = int(self._clock() * 1000)
        good = []
        for index, raw in enumerate(raws):
            if self._erased and (user_id := self._pseudonymize(raw.get("user_id"))) in self._erased:
                at = index if is_batch else None
                dead_letters.append(self._reject.erased(coords, at, user_id))
                continue
            try:
                validate(raw, now_ms, self._limits)
            except ValidationError as exc:
                if not is_batch:
                    raise
                dead_letters.append(self._reject.event(key, raw, headers, coords, index, exc))
                continue
            pos = windows.position(offset, index)
            seen = self._dedup.check(partition, raw["event_id"], raw["event_time"], pos)
            if seen is Seen.DUPLICATE:
                m.duplicates.inc()
                continue
            event = enrich(
                raw, partition=partition, offset=offset, now_ms=now_ms,
                pseudonymize=self._pseudonymize, plugins=self._plugins, people=self._people,
            )  # fmt: skip
            # A replayed message may hold events whose count did not reach the changelog
            # (ids and counts are persisted separately): the position decides.
            result = self._counter.add(
                windows.key_for(event, self._window_ms), pos, event["value"], event["event_time"]
            )
            if result.late:
                m.late.inc()
            if seen is Seen.REPLAY:
                m.replayed.inc()  # forwarded before (ids persist only after delivery)
                continue
            good.append(event)
        return good
