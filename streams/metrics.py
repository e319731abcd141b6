"""Prometheus metrics of the streams worker (``pulse_streams_*``), served on ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class StreamsMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "pulse_streams_messages_in_total", "Raw messages consumed.", ["topic"], registry=r
        )
        self.events_in = Counter(
            "pulse_streams_events_in_total", "Events in decoded raw messages.", registry=r
        )
        self.events_out = Counter(
            "pulse_streams_events_out_total", "Events forwarded, by topic.", ["topic"], registry=r
        )
        self.dead_letters = Counter(
            "pulse_streams_dead_letters_total",
            "Messages or events sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "pulse_streams_duplicate_events_total",
            "Events dropped because their id was seen within the horizon.",
            registry=r,
        )
        self.late = Counter(
            "pulse_streams_late_events_total",
            "Events older than the window retention: forwarded, not counted.",
            registry=r,
        )
        self.replayed = Counter(
            "pulse_streams_replayed_events_total",
            "Events of messages redelivered after a restart or rebalance, already forwarded.",
            registry=r,
        )
        self.offset_gaps = Counter(
            "pulse_streams_offset_gaps_total",
            "Times the consumer skipped raw offsets and the worker re-read them.",
            registry=r,
        )
        self.counts_emitted = Counter(
            "pulse_streams_window_count_messages_total",
            "WindowCountBatch messages sent (one per partition per flush).",
            registry=r,
        )
        self.rebalances = Counter(
            "pulse_streams_rebalances_total", "Consumer group rebalances completed.", registry=r
        )
        self.lag = Gauge(
            "pulse_streams_consumer_lag",
            "Raw messages behind the partition's end (owned partitions, updated each second).",
            ["partition"],
            registry=r,
        )
        self.catalog = Gauge(  # table: plugins, or people (in at least one group)
            "pulse_streams_catalog_entries", "Entries of each catalog table.", ["table"], registry=r
        )
        self.window_keys = Gauge(
            "pulse_streams_window_keys", "Live window keys held by this worker.", registry=r
        )
        self.dedup_ids = Gauge(
            "pulse_streams_dedup_ids", "Event ids held for de-duplication.", registry=r
        )
        self.oldest_unflushed = Gauge(  # grows without bound while a flush is stuck
            "pulse_streams_oldest_unflushed_seconds", "Oldest unflushed message's age.", registry=r
        )
        self.stalled_partitions = Gauge(  # with lag, not moved for PULSE_FLUSH_DEADLINE_S
            "pulse_streams_stalled_partitions", "Owned partitions that do not move.", registry=r
        )
        self.processing = Histogram(
            "pulse_streams_message_processing_seconds",
            "Time to decode, validate, enrich and count one raw message.",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=r,
        )
        self.flush = Histogram(
            "pulse_streams_flush_seconds",
            "Time to persist state, emit counts and acknowledge messages.",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
