"""Erasing a person from Pulse, provably and for good.

In this order, each step recorded on the receipt (``pulse.erasures``) so that asking again
resumes an interrupted erasure where it stopped:
1. the keyed ids go on the erasure list (``mark.publish``): from then on streams workers
   dead-letter the person's events (reason ``erased``, the id only) and sinks write none;
2. the eraser waits until the sinks have written everything already on its way
   (``mark.wait_for_sinks``), so nothing of the person can reach ClickHouse after step 4;
3. the rollup keys the person touched are kept and their sums corrected (``rollups``);
4. their events and the dead letters holding them are deleted (mutations, rewritten parts);
5. the touched keys' unique users and sessions are recounted from ``events``;
6. the receipt says ``completed``, with the rows removed per table and the days and hours
   recounted, which ``verify`` checks again at any time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import call
from sinks.erasure import mark, rollups
from sinks.erasure.person import Person
from sinks.erasure.receipts import Receipt, Receipts
from sinks.errors import ErasureError
from sinks.settings import SinkSettings

SYNC = {"mutations_sync": 2}
# The set rewrite reads another table (joinGet), which ClickHouse calls non-deterministic.
REWRITE = {**SYNC, "allow_nondeterministic_mutations": 1}
# A person's dead letters: those naming their keyed id, or holding what a producer sent of them.
DEAD_LETTERS = (
    "reason != 'erased' AND (detail IN {ids:Array(String)} OR multiSearchAny("
    "base64Decode(payload_base64), arrayMap(x -> unhex(x), {needles:Array(String)})))"
)


@dataclass
class Verification:
    erasure_id: str | None
    rows_left: dict[str, int]
    rollup_differences: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.erasure_id is not None and not any(
            (*self.rows_left.values(), *self.rollup_differences.values())
        )

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class Eraser:
    def __init__(
        self,
        client: Client,
        settings: SinkSettings,
        say: Callable[[str], None] = lambda _: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if settings.clickhouse_cluster:
            raise ErasureError("erasure does not run in cluster mode (PULSE_CLICKHOUSE_CLUSTER)")
        self._client, self._settings = client, settings
        self._say, self._clock = say, clock
        self._receipts = Receipts(client, settings.database, clock)

    def erase(self, person: Person, requested_by: str) -> Receipt:
        unfinished = self._receipts.of(person.user_id, "stage != 'completed'")
        receipt = unfinished[0] if unfinished else Receipt(
            str(uuid.uuid4()), person.user_id, list(person.user_ids), requested_by, self._clock()
        )  # fmt: skip
        self._say(f"erasure {receipt.erasure_id}: {receipt.stage}")
        self._receipts.file(receipt)
        mark.publish(self._settings, person.user_ids, receipt.erasure_id, receipt.requested_at)
        mark.wait_for_sinks(self._settings, self._say)
        rows = PersonRows(self._client, self._settings.database, person, receipt.erasure_id)
        if receipt.stage == "requested":
            receipt.days, receipt.hours = rows.correct_sums()
            self._advance(receipt, "corrected")
        if receipt.stage == "corrected":
            for table in rows.tables:
                if table not in receipt.rows_removed:  # else deleted before an interruption
                    receipt.rows_removed[table] = rows.delete(table)
                    self._receipts.file(receipt)
            self._advance(receipt, "deleted")
        if receipt.stage == "deleted":
            rows.recount_sets()
            receipt.completed_at = self._clock()
            self._advance(receipt, "completed")
        self._say(f"erasure {receipt.erasure_id}: {receipt.stage}")
        return receipt

    def verify(self, person: Person) -> Verification:
        """The latest completed erasure of the person still holds: none of their rows are
        left, and the rollups of the days and hours it recounted equal a recount of events."""
        found = self._receipts.of(person.user_id, "stage = 'completed'")
        rows = PersonRows(self._client, self._settings.database, person, "")
        left = {table: rows.count(table) for table in rows.tables}
        if not found:
            return Verification(None, left, {})
        receipt = found[0]
        return Verification(receipt.erasure_id, left, rows.differences(receipt.days, receipt.hours))

    def _advance(self, receipt: Receipt, stage: str) -> None:
        receipt.stage = stage
        self._receipts.file(receipt)


class PersonRows:
    """The ClickHouse side: a person's rows, and the rollup keys they touched (kept in working
    tables named after the erasure until their sets are recounted)."""

    tables = ("events", "dead_letters")

    def __init__(self, client: Client, database: str, person: Person, erasure_id: str) -> None:
        self._client, self._db = client, database
        self._params = {"ids": list(person.user_ids),
                        "needles": [n.hex() for n in person.needles]}  # fmt: skip
        self._where = {"events": "user_id IN {ids:Array(String)}", "dead_letters": DEAD_LETTERS}
        tag = erasure_id.replace("-", "")
        self._keys = {r.table: f"_erasure_{tag}_{r.table}" for r in rollups.ROLLUPS}

    def correct_sums(self) -> tuple[list[date], list[datetime]]:
        """Keep the touched keys and subtract the person from the sums; returns the days and
        hours touched."""
        for rollup in rollups.ROLLUPS:
            self._run(rollups.touched(self._db, rollup, self._keys[rollup.table]), self._params)
        daily, hourly = self._keys["usage_daily"], self._keys["usage_hourly"]
        days = self._column(f"SELECT DISTINCT day FROM {self._db}.{daily} ORDER BY day")
        hours = self._column(f"SELECT DISTINCT hour FROM {self._db}.{hourly} ORDER BY hour")
        for rollup in rollups.ROLLUPS:
            # The token makes a retry after a crash, before the receipt says so, a no-op.
            token = f"{self._keys[rollup.table]}:negated"
            self._run(rollups.negated(self._db, rollup), self._params,
                      settings={"insert_deduplication_token": token})  # fmt: skip
        return days, hours

    def delete(self, table: str) -> int:
        """Delete the person's rows of ``table`` (parts rewritten); returns how many there were."""
        removed = self.count(table)
        statement = f"ALTER TABLE {self._db}.{table} DELETE WHERE {self._where[table]}"
        self._run(statement, self._params, SYNC)
        return removed

    def recount_sets(self) -> None:
        for rollup in rollups.ROLLUPS:
            keys = self._keys[rollup.table]
            fix = keys + "_fix"
            if not self._run(f"EXISTS TABLE {self._db}.{keys}"):
                continue  # recounted before the erasure was interrupted
            self._run(f"DROP TABLE IF EXISTS {self._db}.{fix}")
            self._run(rollups.recount_table(self._db, rollup, keys, fix))
            self._run(rollups.rewrite_sets(self._db, rollup, fix), settings=REWRITE)
            self._run(rollups.patch(self._db, rollup, keys))
            self._run(f"DROP TABLE {self._db}.{fix}")
            self._run(f"DROP TABLE {self._db}.{keys}")

    def count(self, table: str) -> int:
        sql = f"SELECT count() FROM {self._db}.{table} WHERE {self._where[table]}"
        return int(self._run(sql, self._params))

    def differences(self, days: list[date], hours: list[datetime]) -> dict[str, int]:
        """Per rollup, the keys of those days or hours that differ from a recount of events."""
        out = {}
        for rollup in rollups.ROLLUPS:
            hourly = rollup.time == "hour"
            kind = "Array(DateTime('UTC'))" if hourly else "Array(Date)"
            sql = rollups.differences(self._db, rollup, f"{{buckets:{kind}}}")
            out[rollup.table] = int(self._run(sql, {"buckets": hours if hourly else days}))
        return out

    def _column(self, sql: str) -> list[Any]:
        return [row[0] for row in call("erasing", self._client.query, sql).result_rows]

    def _run(self, sql: str, params: dict | None = None, settings: dict | None = None) -> Any:
        return call("erasing", self._client.command, sql, parameters=params, settings=settings)
