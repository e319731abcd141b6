"""Insert intents: the offset range a sink is about to insert, recorded in ClickHouse first.

Kafka commits say where a partition's next batch starts, not where the last attempt ended; a
sink killed after its insert and before its commit leaves the next owner a range it may or may
not have written. So before inserting a partition's run, the sink records (first, last) here;
whoever is assigned that partition looks up the intent that starts at the committed offset and
rebuilds exactly that run, whose deduplication token then matches the first attempt's.
(Kafka's own commit metadata would do, but the embedded broker does not keep it.)
"""

from __future__ import annotations

from collections.abc import Iterable

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import call
from sinks.worker.batch import Run

COLUMNS = ["target", "topic", "partition", "first_offset", "last_offset"]


class Intents:
    def __init__(self, client: Client, database: str, target: str, topic: str) -> None:
        self._client = client
        self._table = f"{database}.sink_intents"
        self._target = target
        self._topic = topic

    def record(self, runs: Iterable[Run]) -> None:
        rows = [[self._target, self._topic, r.partition, r.first, r.last] for r in runs]
        if rows:
            call(
                "recording insert intents",
                self._client.insert,
                self._table,
                rows,
                column_names=COLUMNS,
            )

    def pending(self, committed: dict[int, int]) -> dict[int, int]:
        """For partitions whose committed offset starts a recorded run: partition -> last offset."""
        if not committed:
            return {}
        pairs = ",".join(f"({int(p)},{int(o)})" for p, o in committed.items())
        result = call(
            "reading insert intents",
            self._client.query,
            f"SELECT partition, max(last_offset) FROM {self._table} FINAL "
            "WHERE target = {target:String} AND topic = {topic:String} "
            f"AND (partition, first_offset) IN ({pairs}) GROUP BY partition",
            parameters={"target": self._target, "topic": self._topic},
        )
        return {int(p): int(last) for p, last in result.result_rows}
