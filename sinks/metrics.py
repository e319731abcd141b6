"""Prometheus metrics of the sink workers (one registry per process, served on /metrics)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "pulse_sink_messages_total", "Messages consumed", ["table"], registry=r
        )
        self.rows = Counter(
            "pulse_sink_rows_written_total", "Rows ClickHouse acknowledged", ["table"], registry=r
        )
        self.insert_seconds = Histogram(
            "pulse_sink_insert_seconds",
            "Duration of one insert, retries included",
            ["table"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.batch_rows = Histogram(
            "pulse_sink_batch_rows",
            "Rows per flushed partition run",
            ["table"],
            buckets=(1, 10, 100, 500, 1000, 5000, 10_000, 50_000, 100_000),
            registry=r,
        )
        self.retries = Counter(
            "pulse_sink_insert_retries_total",
            "Inserts retried because ClickHouse was unavailable",
            ["table"],
            registry=r,
        )
        self.rejected = Counter(
            "pulse_sink_rows_rejected_total",
            "Rows ClickHouse rejected, sent to the dead-letter topic",
            ["table", "reason"],
            registry=r,
        )
        self.fallbacks = Counter(
            "pulse_sink_decoded_messages_total",
            "Messages decoded in Python instead of handed to ClickHouse as Avro",
            ["table"],
            registry=r,
        )
        self.repeats = Counter(
            "pulse_sink_repeated_messages_total",
            "Messages skipped because a streams worker had forwarded them already",
            ["table"],
            registry=r,
        )
        self.replays = Counter(
            "pulse_sink_replayed_runs_total",
            "Partition runs rebuilt from an insert intent after a takeover",
            ["table"],
            registry=r,
        )
        self.rebalances = Counter(
            "pulse_sink_partition_assignments_total",
            "Partition assignments received (each rebalance counts once per sink)",
            ["table"],
            registry=r,
        )
        self.lag = Gauge(
            "pulse_sink_consumer_lag",
            "Messages behind the partition's end, at the last flush",
            ["table", "partition"],
            registry=r,
        )


@dataclass(frozen=True)
class TableSeries:
    """One table's series of the sink metrics, labelled once (labelling per message costs)."""

    table: str
    messages: Any
    rows: Any
    insert_seconds: Any
    batch_rows: Any
    retries: Any
    fallbacks: Any
    replays: Any
    repeats: Any
    rebalances: Any
    metrics: SinkMetrics  # for the series with more labels than the table

    @classmethod
    def of(cls, metrics: SinkMetrics, table: str) -> TableSeries:
        names = [f for f in cls.__dataclass_fields__ if f not in ("table", "metrics")]
        labelled = {name: getattr(metrics, name).labels(table) for name in names}
        return cls(table=table, metrics=metrics, **labelled)

    def rejected(self, reason: str) -> None:
        self.metrics.rejected.labels(self.table, reason).inc()

    def lag(self, partition: int, behind: int) -> None:
        self.metrics.lag.labels(self.table, str(partition)).set(behind)

    def forget_lag(self, partition: int) -> None:
        with contextlib.suppress(KeyError):  # never flushed here
            self.metrics.lag.remove(self.table, str(partition))
