"""Errors of the sinks package. ClickHouse errors carry the server's code and name."""

from __future__ import annotations


class SinkError(Exception):
    """Root of every error this package raises."""


class ClickHouseError(SinkError):
    """ClickHouse refused or failed a request."""

    def __init__(self, message: str, code: int | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


class ClickHouseUnavailableError(ClickHouseError):
    """Transient: unreachable, overloaded (too many parts), timed out. Retry the same batch."""


class ClickHouseRejectedError(ClickHouseError):
    """Permanent for these rows: bad data or a query error. Retrying the same input fails again."""


class MigrationError(SinkError):
    """A migration failed or an applied migration was edited afterwards."""


class DeadLetterError(SinkError):
    """Dead letters were not delivered: the offsets they came from are not committed."""


class RebalanceError(SinkError):
    """Taking over or handing back partitions failed (e.g. Kafka kept refusing a request)."""


class KafkaUnavailableError(SinkError):
    """Kafka did not answer a request the sink or the eraser cannot go on without."""


class ErasureError(SinkError):
    """An erasure could not be completed (it is safe to ask for it again)."""


class QueryRefusedError(ClickHouseRejectedError):
    """An analyst's query outside the query policy or its limits. ``reason`` is a stable code
    (``forbidden_table_function``, ``limit_exceeded``, …); ``status`` the HTTP answer."""

    def __init__(
        self,
        reason: str,
        message: str,
        status: int = 403,
        code: int | None = 497,
        name: str | None = "ACCESS_DENIED",
    ) -> None:
        super().__init__(message, code, name)
        self.reason = reason
        self.status = status

    def __str__(self) -> str:
        return f"{super().__str__()} ({self.reason})"
