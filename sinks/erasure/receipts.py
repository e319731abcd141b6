"""Erasure receipts: the table ``pulse.erasures``, one row per erasure and stage (the latest
wins), naming the person by keyed ids only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import call


@dataclass
class Receipt:
    erasure_id: str
    user_id: str
    user_ids: list[str]
    requested_by: str
    requested_at: datetime
    stage: str = "requested"
    completed_at: datetime | None = None
    rows_removed: dict[str, int] = field(default_factory=dict)
    days: list[date] = field(default_factory=list)
    hours: list[datetime] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("requested_at", "completed_at"):
            out[name] = out[name].isoformat() if out[name] else None
        out["days"] = [d.isoformat() for d in self.days]
        out["hours"] = [h.isoformat() for h in self.hours]
        return out


class Receipts:
    def __init__(self, client: Client, database: str, clock: Callable[[], datetime]) -> None:
        self._client, self._db, self._clock = client, database, clock

    def of(self, user_id: str, condition: str) -> list[Receipt]:
        """The person's receipts meeting ``condition`` (SQL on the table), newest first."""
        names = ", ".join(Receipt.__dataclass_fields__)
        result = call(
            "reading erasure receipts",
            self._client.query,
            f"SELECT {names} FROM {self._db}.erasures FINAL WHERE user_id = {{id:String}} "
            f"AND {condition} ORDER BY requested_at DESC",
            parameters={"id": user_id},
        )
        return [
            Receipt(**{**dict(zip(result.column_names, row, strict=True)),
                       "erasure_id": str(row[0])})
            for row in result.result_rows
        ]  # fmt: skip

    def file(self, receipt: Receipt) -> None:
        row = {**asdict(receipt), "updated_at": self._clock()}
        call("filing the erasure receipt", self._client.insert, f"{self._db}.erasures",
             [list(row.values())], column_names=list(row))  # fmt: skip
