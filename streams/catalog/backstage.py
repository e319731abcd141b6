"""Backstage's catalog API as a source of Users and Groups: ``GET
{backend}/api/catalog/entities/by-query`` page by page (``pageInfo.nextCursor``), with a
static external-access token (``Authorization: Bearer``).

Every failure names the URL: a refused token (401/403) at once; an error status (5xx, 429), a
timeout or a broken connection after a few attempts; a page that is not the API's shape
(no ``items``, a cursor loop) or a listing that ends short of its ``totalItems``. Nothing is
returned unless every page was read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import urllib3
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from streams.catalog import CatalogError

# What the org model reads: the rest of each entity stays in the catalog.
FIELDS = (
    "apiVersion,kind,metadata.name,metadata.namespace,metadata.title,spec.memberOf,"
    "spec.profile.displayName,spec.type,spec.parent,spec.children,spec.members,relations"
)
MAX_PAGES = 100_000


class _Retriable(CatalogError):
    """A failure worth another attempt: 5xx, 429, a timeout, a broken connection."""


class BackstageCatalog:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        page_size: int = 500,
        timeout_s: float = 30.0,
        attempts: int = 4,
        http: urllib3.PoolManager | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._page_size = page_size
        self._timeout = urllib3.Timeout(connect=min(timeout_s, 10.0), read=timeout_s)
        self._attempts = attempts
        self._http = http or urllib3.PoolManager(retries=False)

    def entities(self, kind: str) -> Iterator[tuple[str, Any]]:
        """``(url, entity)`` for every entity of ``kind``; raises CatalogError."""
        query: dict[str, Any] = {"filter": f"kind={kind}", "limit": self._page_size,
                                 "fields": FIELDS}  # fmt: skip
        total: int | None = None
        received, cursors = 0, set()
        for _ in range(MAX_PAGES):
            url = f"{self._base}/api/catalog/entities/by-query?{urlencode(query)}"
            page = self._page(url)
            if total is None:
                total = page["totalItems"]
            for entity in page["items"]:
                yield url, entity
            received += len(page["items"])
            cursor = page["pageInfo"].get("nextCursor")
            if not cursor:
                break
            if cursor in cursors:
                raise CatalogError(f"{url}: the catalog returned a cursor it returned before")
            cursors.add(cursor)
            query = {"cursor": cursor, "limit": self._page_size, "fields": FIELDS}
        else:
            raise CatalogError(f"{self._base}: more than {MAX_PAGES} pages of {kind} entities")
        if total is not None and received < total:
            raise CatalogError(
                f"{self._base}/api/catalog/entities/by-query: {received} of {total} {kind} "
                "entities returned (a partial listing is not published)"
            )

    def _page(self, url: str) -> dict[str, Any]:
        return Retrying(
            retry=retry_if_exception_type(_Retriable),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.5, max=8),
            reraise=True,
        )(_get, self._http, url, self._headers, self._timeout)


def _get(
    http: urllib3.PoolManager, url: str, headers: dict[str, str], timeout: urllib3.Timeout
) -> dict[str, Any]:
    try:
        response = http.request("GET", url, headers=headers, timeout=timeout, preload_content=True)
    except urllib3.exceptions.HTTPError as exc:
        raise _Retriable(f"{url}: {type(exc).__name__}: {exc}") from exc
    status = response.status
    if status in (401, 403):
        raise CatalogError(f"{url}: {status}: the catalog refused the token")
    if status == 429 or status >= 500:
        raise _Retriable(f"{url}: {status}: {response.data[:200]!r}")
    if status != 200:
        raise CatalogError(f"{url}: {status}: {response.data[:200]!r}")
    try:
        page = json.loads(response.data)
    except ValueError as exc:
        raise CatalogError(f"{url}: the answer is not JSON (truncated?): {exc}") from exc
    if not (
        isinstance(page, dict) and isinstance(page.get("items"), list)
        and isinstance(page.get("pageInfo"), dict)
        and isinstance(page.get("totalItems", 0), int)
    ):  # fmt: skip
        raise CatalogError(f"{url}: not a page of entities (items, pageInfo, totalItems)")
    page.setdefault("totalItems", None)
    return page
