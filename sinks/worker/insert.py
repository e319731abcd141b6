"""Inserting into ClickHouse: retried while it is unavailable, rejected rows isolated.

A transient failure keeps the run and retries with backoff until ClickHouse is back or the sink
is asked to stop (then the run is abandoned uncommitted and replayed on the next start). Rows
ClickHouse rejects as bad data are found by halving and handed back one by one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_any,
    stop_never,
    wait_exponential_jitter,
)

from schemas.container import ContainerWriter
from sinks.clickhouse import call
from sinks.errors import ClickHouseRejectedError, ClickHouseUnavailableError
from sinks.metrics import TableSeries
from sinks.worker.stats import SinkStats

log = logging.getLogger("pulse.sinks")

# Settings of every insert: a retried token is dropped in the table and in the rollup views;
# and no collapsing of equal sorting keys at insert time (ReplacingMergeTree's default), which
# nearly halved insert speed and is not needed: tokens keep repeats out, merges are the backstop.
# In cluster mode an insert into a Distributed table returns once the shards have it.
INSERT_SETTINGS = {
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # A record written by an older schema version lacks the newer fields: their columns take
    # their defaults, where ClickHouse would refuse the container and the sink decode it in
    # Python (test_sink.py::test_an_older_writers_events_take_the_new_columns_defaults).
    "input_format_avro_allow_missing_fields": 1,
    "optimize_on_insert": 0,
    "distributed_foreground_insert": 1,
}


@dataclass
class Rows:
    """Rows decoded in Python, with where each came from (message, index in its envelope)."""

    records: list[dict[str, Any]]
    sources: list[tuple[Any, int | None]]


# Called with the rows, the index of the one rejected row and the error.
Rejected = Callable[[Rows, int, ClickHouseRejectedError], None]


class Inserter:
    def __init__(
        self,
        target: str,
        columns: tuple[str, ...],
        series: TableSeries,
        stats: SinkStats,
        stop: threading.Event,
    ) -> None:
        self._target = target
        self._columns = list(columns)
        self._series = series
        self._stats = stats
        self._stop = stop
        self.unavailable = False  # the last insert is still being retried

    def container(self, client: Client, writer: ContainerWriter, token: str) -> None:
        """Insert an Avro object container as it is; raises ClickHouseRejectedError."""
        body = writer.getvalue()
        self._retrying(
            lambda: call(
                f"inserting into {self._target}",
                client.raw_insert,
                self._target,
                self._columns,
                body,
                fmt="Avro",
                settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
            )
        )

    def rows(
        self, client: Client, rows: Rows, token: str, rejected: Rejected, lo: int = 0, hi=None
    ) -> int:
        """Insert rows lo:hi; each row ClickHouse rejects as bad data goes to ``rejected``.
        Returns the rows written."""
        hi = len(rows.records) if hi is None else hi
        if hi <= lo:
            return 0
        part = token if (lo, hi) == (0, len(rows.records)) else f"{token}#{lo}-{hi}"
        columns = [[r[name] for r in rows.records[lo:hi]] for name in self._columns]
        try:
            self._retrying(
                lambda: call(
                    f"inserting into {self._target}",
                    client.insert,
                    self._target,
                    columns,
                    column_names=self._columns,
                    column_oriented=True,
                    settings={**INSERT_SETTINGS, "insert_deduplication_token": part},
                )
            )
            return hi - lo
        except ClickHouseRejectedError as exc:
            if hi - lo == 1:
                rejected(rows, lo, exc)
                return 0
            mid = (lo + hi) // 2
            return self.rows(client, rows, token, rejected, lo, mid) + self.rows(
                client, rows, token, rejected, mid, hi
            )

    def _retrying(self, attempt: Callable[[], object]) -> None:
        started = time.perf_counter()
        Retrying(
            retry=retry_if_exception_type(ClickHouseUnavailableError),
            wait=wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.2),
            stop=stop_any(stop_never, lambda _: self._stop.is_set()),
            before_sleep=self._unavailable,
            reraise=True,
        )(attempt)
        self.unavailable = False
        self._series.insert_seconds.observe(time.perf_counter() - started)

    def _unavailable(self, state: object) -> None:
        self.unavailable = True
        self._stats.add("retries")
        self._series.retries.inc()
        log.warning("sink %s: ClickHouse unavailable, retrying", self._series.table)
