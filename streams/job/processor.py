"""One raw message in, its outcomes out: the whole streams job without faust (pure logic
over injected state), so it is unit-tested and benchmarked without a broker.

Per message: size check, decode (single event or batch envelope), then per event: validate,
de-duplicate, enrich, count. Good events leave as one EnrichedEventBatch; each bad one as a dead
letter (a bad *message* keeps its original bytes; a bad event inside a batch is re-encoded alone
and says which index it was). Ledger: events in = forwarded + dead-lettered + duplicates +
replayed (a message seen again after a restart, already forwarded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from schemas import (
    ANALYTICS_EVENT,
    ANALYTICS_EVENT_BATCH,
    ENRICHED_EVENT_BATCH,
    WINDOW_COUNT_BATCH,
    Decoder,
    Encoder,
    SchemaError,
    default_catalog,
)
from schemas.dead_letters import (
    STAGE_DECODE,
    STAGE_VALIDATE,
    dead_letter_headers,
    source_headers,
)
from streams.job import windows
from streams.job.dedup import Deduplicator, Seen
from streams.job.enrich import PluginLookup, enrich, no_plugins
from streams.job.pseudonymize import Pseudonymizer
from streams.job.validate import Limits, ValidationError, validate
from streams.metrics import StreamsMetrics

Headers = list[tuple[str, bytes]]
COUNTS_PER_MESSAGE = 5000  # ~500 KB: under Kafka's default 1 MB message limit


@dataclass
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: Headers
    reason: str


@dataclass
class Outcome:
    enriched: bytes | None = None  # one EnrichedEventBatch, or None when no event was good
    # Its source coordinates: a sink recognises by them a message forwarded twice (a worker
    # killed before its flush leaves messages its successor forwards again).
    enriched_headers: Headers = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events_out: int = 0


@dataclass
class Flush:
    """What one flush must persist and send, in this order (see ``app``)."""

    count_states: list[tuple[int, str, dict[str, Any] | None]]  # (partition, bucket, states)
    dedup_chunks: list[tuple[int, str, str | None]]  # (partition, key, payload|None)
    count_records: list[tuple[bytes, bytes]]  # (partition, WindowCountBatch) for counts topic


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
        metrics: StreamsMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        catalog = default_catalog()
        self._decode = Decoder(catalog, [ANALYTICS_EVENT, ANALYTICS_EVENT_BATCH])
        self._encode_event = Encoder(catalog.latest(ANALYTICS_EVENT))
        self._encode_enriched = Encoder(catalog.latest(ENRICHED_EVENT_BATCH))
        self._encode_counts = Encoder(catalog.latest(WINDOW_COUNT_BATCH))
        self._pseudonymize = Pseudonymizer(secret)
        self._plugins = plugins
        self.limits = limits
        self.window_ms = window_ms
        self.counter = windows.WindowCounter(counts_store, window_ms, retention_ms)
        self.dedup = Deduplicator(dedup_horizon_ms, dedup_max_ids)
        self.metrics = metrics or StreamsMetrics()
        self._clock = clock

    def process(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        topic: str,
        partition: int,
        offset: int,
    ) -> Outcome:
        m = self.metrics
        m.messages_in.labels(topic).inc()
        coords = {"topic": topic, "partition": partition, "offset": offset}
        data = value or b""
        if len(data) > self.limits.max_message_bytes:
            return self._reject(
                key,
                value,
                headers,
                coords,
                "oversize_message",
                f"{len(data)} B, at most {self.limits.max_message_bytes}",
            )
        try:
            decoded = self._decode.decode(data)
        except SchemaError as exc:
            return self._reject(key, value, headers, coords, exc.reason, str(exc))
        is_batch = decoded.writer.name == ANALYTICS_EVENT_BATCH
        raws = decoded.record["events"] if is_batch else [decoded.record]
        if len(raws) > min(self.limits.max_batch_events, windows.MAX_BATCH_EVENTS):
            return self._reject(
                key,
                value,
                headers,
                coords,
                "too_many_events",
                f"{len(raws)} events, at most {self.limits.max_batch_events}",
            )
        m.events_in.inc(len(raws))
        now_ms = int(self._clock() * 1000)
        outcome = Outcome()
        good = []
        for index, raw in enumerate(raws):
            try:
                validate(raw, now_ms, self.limits)
            except ValidationError as exc:
                if not is_batch:
                    return self._reject(
                        key, value, headers, coords, exc.reason, exc.detail, stage=STAGE_VALIDATE
                    )
                outcome.dead_letters.append(
                    self._event_dead_letter(key, raw, headers, coords, index, exc)
                )
                continue
            pos = windows.position(offset, index)
            seen = self.dedup.check(partition, raw["event_id"], raw["event_time"], pos)
            if seen is Seen.DUPLICATE:
                m.duplicates.inc()
                continue
            event = enrich(
                raw,
                partition=partition,
                offset=offset,
                now_ms=now_ms,
                pseudonymize=self._pseudonymize,
                plugins=self._plugins,
            )
            # A replayed message may hold events whose count did not reach the changelog
            # (ids and counts are persisted separately): the position decides.
            result = self.counter.add(
                windows.key_for(event, self.window_ms), pos, event["value"], event["event_time"]
            )
            if result.late:
                m.late.inc()
            if seen is Seen.REPLAY:
                m.replayed.inc()  # forwarded before (ids persist only after delivery)
                continue
            good.append(event)
        if good:
            outcome.enriched = self._encode_enriched({"events": good})
            outcome.enriched_headers = source_headers(topic, partition, offset)
            outcome.events_out = len(good)
        return outcome

    def _reject(self, key, value, headers, coords, reason, detail, stage=STAGE_DECODE) -> Outcome:
        self.metrics.dead_letters.labels(reason).inc()
        hdrs = dead_letter_headers(headers, stage=stage, reason=reason, detail=detail, **coords)
        return Outcome(dead_letters=[DeadLetter(key, value, hdrs, reason)])

    def _event_dead_letter(self, key, raw, headers, coords, index, exc) -> DeadLetter:
        self.metrics.dead_letters.labels(exc.reason).inc()
        hdrs = dead_letter_headers(
            headers,
            stage=STAGE_VALIDATE,
            reason=exc.reason,
            detail=exc.detail,
            batch_index=index,
            **coords,
        )
        try:
            value = self._encode_event(raw)
        except (ValueError, TypeError, OverflowError):  # not even re-encodable: keep the text
            value = repr(raw).encode("utf-8", "replace")
        return DeadLetter(key, value, hdrs, exc.reason)

    def flush(self) -> Flush:
        """Collect everything changed since the last flush (synchronously: atomic in asyncio)."""
        # Changed counts before expiry: a window that expires in this flush still has its last
        # count emitted (test_every_forwarded_event_is_in_one_emitted_count_or_counted_late).
        buckets, keys = self.counter.take_dirty()
        expired = self.counter.expire()
        states: list[tuple[int, str, dict[str, Any] | None]] = [
            (windows.bucket_partition(b), b, dict(s)) for b, s in buckets
        ]
        states.extend((p, b, None) for p, b in expired)
        chunks: list[tuple[int, str, str | None]] = list(self.dedup.take_chunks())
        chunks.extend((p, k, None) for p, k in self.dedup.expire(self.counter.watermark))
        self.metrics.window_keys.set(len(self.counter))
        self.metrics.dedup_ids.set(self.dedup.size)
        return Flush(states, chunks, self._count_messages(keys))

    def count_records(self, partitions: set[int]) -> list[tuple[bytes, bytes]]:
        """Every count of these partitions (re-emission after a rebalance)."""
        return self._count_messages(self.counter.states(partitions))

    def _count_messages(self, keys: list[tuple[str, Any]]) -> list[tuple[bytes, bytes]]:
        """One WindowCountBatch per source partition (key = the partition)."""
        now_ms = int(self._clock() * 1000)
        by_partition: dict[int, list[dict[str, Any]]] = {}
        for text, state in keys:
            key = windows.WindowKey.decode(text)
            record = windows.to_record(key, state, self.window_ms, now_ms)
            by_partition.setdefault(key.source_partition, []).append(record)
        out = []
        for p, records in by_partition.items():
            for i in range(0, len(records), COUNTS_PER_MESSAGE):
                chunk = records[i : i + COUNTS_PER_MESSAGE]
                out.append((str(p).encode(), self._encode_counts({"counts": chunk})))
        return out
