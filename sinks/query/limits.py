"""Limits on every analyst query, as the SETTINGS clause Pulse appends to it.

ClickHouse enforces them (``*_overflow_mode = 'throw'``); ``readonly = 1`` also stops anything in
the query from changing a setting. ``log_comment`` tags the query so it can be found in
``system.processes`` and killed when its client goes away.
"""

from __future__ import annotations

from dataclasses import dataclass

# Server codes of a query stopped by one of these limits.
LIMIT_CODES = frozenset(
    {
        158,  # TOO_MANY_ROWS
        159,  # TIMEOUT_EXCEEDED
        160,  # TOO_SLOW
        241,  # MEMORY_LIMIT_EXCEEDED
        307,  # TOO_MANY_BYTES
        396,  # TOO_MANY_ROWS_OR_BYTES
    }
)
MARKER_PREFIX = "pulse-query-"


@dataclass(frozen=True)
class QueryLimits:
    max_execution_s: float = 60.0
    max_memory_bytes: int = 1 << 30
    max_rows_to_read: int = 1_000_000_000
    max_bytes_to_read: int = 20 << 30
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 128 << 20
    max_threads: int = 2

    def clause(self, marker: str, readonly: bool = True) -> str:
        """The SETTINGS clause (without the keyword) for one query tagged ``marker``;
        ``readonly``: also make it read-only (not where the session already is)."""
        if not marker.startswith(MARKER_PREFIX) or not marker[len(MARKER_PREFIX) :].isalnum():
            raise ValueError(f"not a query marker: {marker!r}")
        settings: dict[str, object] = {"readonly": 1} if readonly else {}
        settings |= {
            "max_execution_time": self.max_execution_s,
            "timeout_overflow_mode": "'throw'",
            "max_memory_usage": self.max_memory_bytes,
            "max_rows_to_read": self.max_rows_to_read,
            "max_bytes_to_read": self.max_bytes_to_read,
            "read_overflow_mode": "'throw'",
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "'throw'",
            "max_threads": self.max_threads,
            "log_comment": f"'{marker}'",
        }
        return ", ".join(f"{k} = {v}" for k, v in settings.items())
