"""The embedded engine's HTTP endpoint speaks enough of ClickHouse's HTTP interface for curl-style
requests and for clickhouse-connect's own HTTP client (what Grafana-style tools use), and only
for reading."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from sinks.query.server import QueryServer
from streams.kafka.broker import free_port

from .conftest import READ_TOKEN, REPO, wait_for

AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


def fetch(url: str, headers: dict[str, str] | None = AUTH, timeout: float = 10) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    return urllib.request.urlopen(request, timeout=timeout).read()


def pool(chdb_client, database):
    """Makes the query server's clients: on the test engine, in the test's database."""
    return lambda: clickhouse_connect.get_client(
        dsn=f"chdb://{chdb_client.path}", database=database
    )


@pytest.fixture
def server(chdb_client, database):
    chdb_client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    chdb_client.command(
        f"CREATE TABLE {database}.t (id UInt32, name String, at DateTime64(3, 'UTC'), "
        "tags Array(String), score Nullable(Float64)) ENGINE = MergeTree ORDER BY id"
    )
    chdb_client.insert(
        f"{database}.t",
        [
            [1, "catalog", datetime.datetime(2026, 1, 2, 3, 4, 5, 678000), ["a", "b"], 1.5],
            [2, "techdocs", datetime.datetime(2026, 1, 3, 0, 0, 0), [], None],
        ],
        column_names=["id", "name", "at", "tags", "score"],
    )
    srv = QueryServer(
        pool(chdb_client, database), "127.0.0.1", free_port(), database,
        read_tokens={"tests": READ_TOKEN},
    ).start()  # fmt: skip
    yield srv, database
    srv.stop()


def test_clickhouse_connect_http_client_gets_typed_rows(server):
    srv, database = server
    port = int(srv.url.rsplit(":", 1)[1])
    # Basic auth with the token as the password, as clickhouse-connect and Grafana send it.
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=port, interface="http", username="tests", password=READ_TOKEN
    )
    result = client.query(
        f"SELECT id, name, at, tags, score FROM {database}.t WHERE name != {{skip:String}} "
        "ORDER BY id",
        parameters={"skip": "none"},
    )
    assert result.column_names == ("id", "name", "at", "tags", "score")
    assert result.result_rows == [
        (1, "catalog", datetime.datetime(2026, 1, 2, 3, 4, 5, 678000), ["a", "b"], 1.5),
        (2, "techdocs", datetime.datetime(2026, 1, 3, 0, 0, 0), [], None),
    ]
    with pytest.raises(DatabaseError, match=r"not_reading"):
        client.command(f"DROP TABLE {database}.t")
    assert client.command(f"SELECT count() FROM {database}.t") == 2  # still there
    bearer = clickhouse_connect.get_client(
        host="127.0.0.1", port=port, interface="http", access_token=READ_TOKEN
    )
    assert bearer.command(f"SELECT count() FROM {database}.t") == 2


def test_no_token_no_rows_on_loopback_too(server):
    srv, database = server
    port = int(srv.url.rsplit(":", 1)[1])
    with pytest.raises(DatabaseError, match=r"AUTHENTICATION_FAILED|516|unauthorized"):
        clickhouse_connect.get_client(host="127.0.0.1", port=port, interface="http",
                                      password="not-the-token-0123456789")  # fmt: skip
    query = urllib.parse.urlencode({"query": f"SELECT name FROM {database}.t"})
    for path in (f"/?{query}", "/dashboard", "/v1/questions", "/v1/questions/top_plugins"):
        for headers in (None, {"Authorization": "Bearer not-the-token-0123456789"},
                        {"Cookie": "pulse_session=made-up"}):  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as refused:
                fetch(srv.url + path, headers)
            assert refused.value.code == 401, path
            assert json.loads(refused.value.read()) == {
                "error": "unauthorized",
                "detail": "a read token is required (Authorization: Bearer <token>)",
            }
            assert refused.value.headers["X-Pulse-Refused"] == "unauthorized"
    assert fetch(f"{srv.url}/ping", None) == b"Ok.\n"  # health stays open


def test_plain_http_with_format_and_parameters(server):
    srv, database = server
    assert urllib.request.urlopen(f"{srv.url}/ping", timeout=5).read() == b"Ok.\n"
    query = f"SELECT name FROM {database}.t WHERE id = {{id:UInt32}} FORMAT JSONEachRow"
    url = f"{srv.url}/?" + urllib.parse.urlencode({"query": query, "param_id": "2"})
    body = fetch(url).decode()
    assert [json.loads(line) for line in body.splitlines()] == [{"name": "techdocs"}]


def test_the_dashboard_runs_standalone_against_a_clickhouse_url(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env["PULSE_CLICKHOUSE_URL"] = f"chdb://{tmp_path / 'ch'}"
    env["PULSE_QUERY_READ_TOKENS"] = f"tests={READ_TOKEN}"
    subprocess.run([sys.executable, "-m", "sinks", "migrate"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sinks", "dashboard", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def page() -> str:
            try:
                return fetch(f"http://127.0.0.1:{port}/dashboard?since=7d").decode()
            except OSError:
                return ""

        html = wait_for(page, 60, "the standalone dashboard")
        assert 'data-chart="usage"' in html and "No data in this range." in html
        script = urllib.request.urlopen(f"http://127.0.0.1:{port}/static/plotly.min.js").read()
        assert len(script) > 1_000_000  # plotly.js, from the installed package
        base = f"http://127.0.0.1:{port}"
        assert urllib.request.urlopen(f"{base}/readyz", timeout=10).status == 200
        for sql, reason in [
            ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "forbidden_table_function"),
            ("SELECT * FROM system.users", "forbidden_database"),
            ("SELECT groupArray(number) FROM numbers(2000000000)", "limit_exceeded"),
        ]:
            request = urllib.request.Request(f"{base}/", sql.encode(), AUTH, method="POST")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=60)
            assert refused.value.headers["X-Pulse-Refused"] == reason
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        assert 'pulse_query_requests_total{code="200",endpoint="/dashboard"}' in metrics
        assert 'pulse_query_refused_total{reason="forbidden_database"} 1.0' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_only_the_admin_token_may_write(chdb_client, database):
    chdb_client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    chdb_client.command(f"CREATE TABLE {database}.a (id UInt32) ENGINE = MergeTree ORDER BY id")
    srv = QueryServer(
        pool(chdb_client, database), "127.0.0.1", free_port(), database,
        admin_token="admin-0123456789abcdef", read_tokens={"tests": READ_TOKEN},
    )  # fmt: skip
    srv.start()

    def post(sql: str, token: str | None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(srv.url + "/", sql.encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    try:
        insert = f"INSERT INTO {database}.a VALUES (1)"
        for token in (None, "admin-0123456789abcdeX"):
            assert post(insert, token)[0] == 401
        code, text = post(insert, READ_TOKEN)  # a read token only reads
        assert code == 403 and "only SELECT" in text
        assert post(insert, "admin-0123456789abcdef")[0] == 200
        rename = f"RENAME TABLE {database}.a TO {database}.b"
        assert post(rename, "admin-0123456789abcdef")[0] == 200
        assert post(f"SELECT count() FROM {database}.b", READ_TOKEN) == (200, "1\n")
        # The admin reads what analysts may not, without their limits.
        assert post("SELECT count() > 0 FROM system.tables", READ_TOKEN)[0] == 403
        assert post("SELECT count() > 0 FROM system.tables", "admin-0123456789abcdef") == (
            200, "1\n")  # fmt: skip
    finally:
        srv.stop()


def test_a_blank_query_parameter_is_a_value_not_a_missing_one(server):
    srv, database = server
    query = urllib.parse.urlencode({
        "query": f"SELECT count() FROM {database}.t "
        "WHERE ({name:String} = '' OR name = {name:String})",
        "param_name": "",
    })  # fmt: skip
    assert fetch(f"{srv.url}/?{query}").decode().strip() == "2"  # blank: no filter, both rows
