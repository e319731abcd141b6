"""The ClickHouse boundary: clients by URL (chDB or server), errors translated in one place.

clickhouse-connect picks the backend from the DSN: ``chdb:///path`` is the embedded engine,
``http(s)://user:pass@host:port`` a server. Passwords never appear in logs: use :func:`redact`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError as DriverError
from clickhouse_connect.driver.exceptions import OperationalError

from sinks.errors import ClickHouseError, ClickHouseRejectedError, ClickHouseUnavailableError

T = TypeVar("T")

_CODE = re.compile(r"Code: (\d+)\.")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")
# Server codes after which the same request may succeed later.
RETRYABLE_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        159,  # TIMEOUT_EXCEEDED
        160,  # TOO_SLOW
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)
# Missing table/database: an outage of the schema (dropped, detached), not bad rows.
MISSING_OBJECT_CODES = frozenset({60, 81})


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str, database: str | None = None, **options: Any) -> Client:
    """A client for ``chdb:///path`` (embedded) or ``http(s)://user:pass@host:port`` (server);
    ``options`` (TLS, timeouts, password) apply to servers. No secret reaches an error."""
    secrets = [s for s in (urlsplit(url).password, options.get("password")) if s]
    try:
        if url.startswith("chdb:"):
            return clickhouse_connect.get_client(dsn=url, database=database)
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported scheme {scheme!r}: use chdb://, http:// or https://")
        # clickhouse-connect takes TLS from the port (443/8443) or `secure`, not from the
        # DSN's scheme: https:// on any other port would silently speak plain HTTP.
        return clickhouse_connect.get_client(
            dsn=url, interface=scheme, database=database or "default", **options
        )
    except Exception as exc:
        error = translate(exc, f"connecting to {redact(url)}")
        for secret in secrets:
            error.args = tuple(str(a).replace(str(secret), "***") for a in error.args)
        raise error from None  # the driver's own error may quote the secret


def translate(exc: BaseException, doing: str) -> ClickHouseError:
    """Sort a driver error by what happens next: retry (unavailable) or not (rejected)."""
    text = str(exc)
    code_match = _CODE.search(text)
    code = int(code_match.group(1)) if code_match else None
    name_match = _NAME.search(text)
    name = name_match.group(1) if name_match else None
    message = f"{doing}: {text.strip().splitlines()[0] if text.strip() else type(exc).__name__}"
    if code in RETRYABLE_CODES or code in MISSING_OBJECT_CODES:
        return ClickHouseUnavailableError(message, code, name)
    if isinstance(exc, OperationalError | ConnectionError | TimeoutError) and code is None:
        return ClickHouseUnavailableError(message, code, name)
    if isinstance(exc, DriverError) or code is not None:
        return ClickHouseRejectedError(message, code, name)
    # The driver serializes columns in Python: a value it cannot encode is bad data too.
    if isinstance(exc, ValueError | TypeError | OverflowError | struct.error):
        return ClickHouseRejectedError(message, code, "BAD_VALUE")
    return ClickHouseError(message, code, name)


def call(doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one driver call, translating its errors."""
    try:
        return fn(*args, **kwargs)
    except ClickHouseError:
        raise
    except Exception as exc:
        raise translate(exc, doing) from exc
