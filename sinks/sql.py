"""Read-only SQL for analysts, wherever ClickHouse lives."""

from __future__ import annotations

import urllib3

from sinks.clickhouse import connect
from sinks.errors import ClickHouseRejectedError
from sinks.readonly import run_readonly
from sinks.settings import ClickHouseSettings


def _query_server_up(http: urllib3.PoolManager, url: str) -> bool:
    try:
        return http.request("GET", f"{url}/ping", timeout=1.0, retries=False).status == 200
    except urllib3.exceptions.HTTPError:
        return False


def run_query(settings: ClickHouseSettings, query: str, fmt: str) -> str:
    if settings.embedded:
        http = urllib3.PoolManager()
        if _query_server_up(http, settings.query_url):
            resp = http.request(
                "POST",
                f"{settings.query_url}/?default_format={fmt}",
                body=query.encode(),
                timeout=60.0,
                retries=False,
            )
            text = resp.data.decode("utf-8", "replace")
            if resp.status != 200:
                code = resp.headers.get("X-ClickHouse-Exception-Code")
                raise ClickHouseRejectedError(text.strip(), int(code) if code else None)
            return text
    client = connect(settings.clickhouse_url, settings.database)
    return run_readonly(client, query, fmt).decode("utf-8", "replace")
