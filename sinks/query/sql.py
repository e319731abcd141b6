"""Read-only SQL for analysts, wherever ClickHouse lives."""

from __future__ import annotations

from urllib.parse import urlencode

import urllib3

from sinks.clickhouse import connect
from sinks.errors import ClickHouseRejectedError, ClickHouseUnavailableError, QueryRefusedError
from sinks.query.guard import run_readonly
from sinks.settings import ClickHouseSettings

_http = urllib3.PoolManager()


def query_server_up(url: str) -> bool:
    try:
        return _http.request("GET", f"{url}/ping", timeout=1.0, retries=False).status == 200
    except urllib3.exceptions.HTTPError:
        return False


def query_via_server(
    url: str,
    query: str,
    fmt: str,
    parameters: dict[str, object] | None = None,
    token: str | None = None,
) -> str:
    """Ask the process that owns an embedded chDB (see ``query_server``) with a read token."""
    fields = {"default_format": fmt} | {f"param_{k}": str(v) for k, v in (parameters or {}).items()}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = _http.request(
            "POST",
            f"{url}/?{urlencode(fields)}",
            body=query.encode(),
            headers=headers,
            timeout=60.0,
            retries=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        raise ClickHouseUnavailableError(f"query server {url}: {exc}") from exc
    text = resp.data.decode("utf-8", "replace")
    if resp.status != 200:
        code = resp.headers.get("X-ClickHouse-Exception-Code")
        code_number = int(code) if code and code.isdigit() else None
        reason = resp.headers.get("X-Pulse-Refused")
        if reason == "unauthorized":
            message = (
                f"{url} refused the read token: set PULSE_QUERY_TOKEN or PULSE_QUERY_TOKEN_FILE"
            )
            raise QueryRefusedError(reason, message, resp.status, code_number)
        if reason:
            message = text.strip().removesuffix(f" ({reason})")
            raise QueryRefusedError(reason, message, resp.status, code_number)
        if resp.status == 503:
            raise ClickHouseUnavailableError(text.strip(), code_number)
        raise ClickHouseRejectedError(text.strip(), code_number)
    return text


def run_query(
    settings: ClickHouseSettings,
    query: str,
    fmt: str,
    parameters: dict[str, object] | None = None,
) -> str:
    """Embedded: through the running sink if there is one, else by opening chDB here."""
    if settings.embedded and query_server_up(settings.query_url):
        token = settings.client_token()
        return query_via_server(settings.query_url, query, fmt, parameters, token)
    client = connect(settings.clickhouse_url, settings.database, **settings.connect_options())
    body = run_readonly(client, query, fmt, parameters, settings.database, settings.query_limits())
    return body.decode("utf-8", "replace")
