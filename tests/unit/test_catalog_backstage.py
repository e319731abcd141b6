"""The catalog API client against a scripted transport (no sockets): paging, and every way a
catalog can fail naming the URL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import pytest
import urllib3

from streams.catalog import CatalogError
from streams.catalog.backstage import BackstageCatalog


@dataclass
class Response:
    status: int
    data: bytes


class Catalog:
    """Serves ``entities`` in pages of ``limit``; ``script`` overrides answers in order."""

    def __init__(self, entities, script=()):
        self.entities, self.script, self.requests = entities, list(script), []

    def request(self, method, url, headers, timeout, preload_content):
        self.requests.append((url, headers))
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            if step is not None:
                return step
        query = {k: v[-1] for k, v in parse_qs(urlparse(url).query).items()}
        start = int(query.get("cursor", "0"))
        limit = int(query["limit"])
        kind = query.get("filter", "kind=user").split("=")[1] if "cursor" not in query else None
        items = self.entities[start : start + limit]
        page = {"items": items, "totalItems": len(self.entities), "pageInfo": {}}
        if start + limit < len(self.entities):
            page["pageInfo"]["nextCursor"] = str(start + limit)
        assert kind in (None, "user", "group")
        return Response(200, json.dumps(page).encode())


def client(fake, **kw):
    return BackstageCatalog("http://backstage:7007/", "s3cret", http=fake, page_size=2, **kw)


USERS = [{"kind": "User", "metadata": {"name": f"u{i}"}} for i in range(5)]


def test_pages_until_no_cursor_with_the_token_and_fields():
    fake = Catalog(USERS)
    got = [e["metadata"]["name"] for _, e in client(fake).entities("user")]
    assert got == ["u0", "u1", "u2", "u3", "u4"]
    assert len(fake.requests) == 3
    first, headers = fake.requests[0]
    assert first.startswith(
        "http://backstage:7007/api/catalog/entities/by-query?filter=kind%3Duser"
    )
    assert "fields=" in first and "spec.memberOf" in parse_qs(urlparse(first).query)["fields"][0]
    assert "cursor=2" in fake.requests[1][0] and "filter" not in fake.requests[1][0]
    assert headers["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_fails_at_once_naming_the_url(status):
    fake = Catalog(USERS, [Response(status, b"Unauthorized")])
    with pytest.raises(CatalogError, match=f"by-query.*{status}: the catalog refused the token"):
        list(client(fake).entities("user"))
    assert len(fake.requests) == 1


def test_server_errors_and_timeouts_are_retried_then_fail():
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out")
    fake = Catalog(USERS, [Response(500, b"boom"), timeout, Response(503, b"")])
    assert len(list(client(fake, attempts=4).entities("user"))) == 5  # the fourth answered
    fake = Catalog(USERS, [Response(500, b"boom")] * 3)
    with pytest.raises(CatalogError, match=r"http://backstage:7007/api/catalog/.*500"):
        list(client(fake, attempts=3).entities("user"))


@pytest.mark.parametrize(
    "body",
    [b'{"items": [', b'{"pageInfo": {}}', b"[]", b'{"items": {}, "pageInfo": {}}'],
)
def test_a_page_that_is_not_a_page_is_an_error(body):
    fake = Catalog(USERS, [Response(200, body)])
    with pytest.raises(CatalogError, match="by-query"):
        list(client(fake).entities("user"))


def test_a_listing_short_of_its_total_is_an_error():
    short = {"items": USERS[:2], "totalItems": 5, "pageInfo": {}}
    fake = Catalog(USERS, [Response(200, json.dumps(short).encode())])
    with pytest.raises(CatalogError, match="2 of 5 user entities"):
        list(client(fake).entities("user"))


def test_a_cursor_loop_is_an_error():
    page = {"items": USERS[:2], "totalItems": 5, "pageInfo": {"nextCursor": "same"}}
    fake = Catalog(USERS, [Response(200, json.dumps(page).encode())] * 3)
    with pytest.raises(CatalogError, match="cursor it returned before"):
        list(client(fake).entities("user"))
