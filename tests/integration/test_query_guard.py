"""Analysts' SQL reads Pulse's database and nothing else, through every path that takes SQL:
the guard on embedded chDB (the CLI's path when no sink runs), the query port over HTTP and
the CLI itself. Refusals name their rule; no refused query touches a file or a URL."""

from __future__ import annotations

import http.server
import itertools
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import clickhouse_connect
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks.errors import QueryRefusedError
from sinks.query.guard import Guard
from sinks.query.server import QueryServer
from sinks.query.sql import run_query
from sinks.schema.migrate import migrate
from sinks.settings import ClickHouseSettings
from streams.kafka.broker import free_port

from .conftest import READ_TOKEN, REPO
from .hostile_queries import ALLOWED, HOSTILE, HOSTILE_PARAMETERS, fill

SECRET_TEXT = "the-pseudonymisation-key-0123456789"
AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


@pytest.fixture(scope="module")
def counting_url():
    """An HTTP server on loopback that counts the requests it gets (SSRF would show here)."""
    hits: list[str] = []

    class Count(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"reached\n")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Count)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/x", hits
    server.shutdown()


@pytest.fixture
def pulse_db(chdb_client, database, tmp_path, counting_url):
    migrate(chdb_client, database)
    secret = tmp_path / "user-id-secret"
    secret.write_text(SECRET_TEXT)
    url, hits = counting_url
    hits.clear()
    return database, str(secret), url, hits


def _settings(chdb_client, database: str) -> ClickHouseSettings:
    # No query server at query_url: run_query opens the engine itself, as the CLI does.
    return ClickHouseSettings(
        clickhouse_url=f"chdb://{chdb_client.path}",
        database=database,
        query_url=f"http://127.0.0.1:{free_port()}",
    )


def test_every_hostile_query_is_refused_on_embedded_chdb(chdb_client, pulse_db):
    database, secret, url, hits = pulse_db
    config = _settings(chdb_client, database)
    wrong = []
    for sql, reason in HOSTILE:
        query = fill(sql, database, secret, url)
        try:
            answer = run_query(config, query, "TSV")
            wrong.append((query, f"ran: {answer[:80]!r}"))
        except QueryRefusedError as exc:
            if exc.reason != reason:
                wrong.append((query, f"{exc.reason}: {exc}"))
    for sql, params, reason in HOSTILE_PARAMETERS:
        with pytest.raises(QueryRefusedError) as refused:
            run_query(config, sql, "TSV", params)
        assert refused.value.reason == reason, sql
    assert wrong == [], "\n".join(map(str, wrong))
    assert hits == []  # not one request reached the URL


def test_what_analysts_run_still_runs(chdb_client, pulse_db):
    database, secret, url, _ = pulse_db
    config = _settings(chdb_client, database)
    for sql in ALLOWED:
        run_query(config, fill(sql, database, secret, url), "TSV")


def test_every_hostile_query_is_refused_by_the_query_port(chdb_client, pulse_db):
    database, secret, url, hits = pulse_db
    path = chdb_client.path
    server = QueryServer(
        lambda: clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database),
        "127.0.0.1",
        free_port(),
        database,
        read_tokens={"tests": READ_TOKEN},
    ).start()
    wrong = []
    try:
        for sql, reason in HOSTILE:
            request = urllib.request.Request(
                server.url + "/", fill(sql, database, secret, url).encode(), AUTH, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as resp:
                    wrong.append((sql, f"ran: {resp.read()[:80]!r}"))
            except urllib.error.HTTPError as exc:
                body = exc.read().decode()
                expected = 400 if reason == "syntax_error" else 403
                got = (exc.code, exc.headers.get("X-Pulse-Refused"))
                if got != (expected, reason) or SECRET_TEXT in body or "Traceback" in body:
                    wrong.append((sql, got, body[:200]))
        metrics = urllib.request.urlopen(server.url + "/metrics", timeout=10).read().decode()
    finally:
        server.stop()
    assert wrong == [], "\n".join(map(str, wrong))
    assert hits == []
    counted = {
        line.split('reason="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("pulse_query_refused_total{")
    }
    expected_counts: dict[str, float] = {}
    for _, reason in HOSTILE:
        expected_counts[reason] = expected_counts.get(reason, 0) + 1
    assert counted == expected_counts


def test_the_cli_refuses_and_says_why(tmp_path, counting_url):
    url, hits = counting_url
    hits.clear()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env["PULSE_CLICKHOUSE_URL"] = f"chdb://{tmp_path / 'ch'}"
    env["PULSE_QUERY_URL"] = f"http://127.0.0.1:{free_port()}"  # no sink runs: chDB directly
    subprocess.run([sys.executable, "-m", "sinks", "migrate"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    for sql, reason in [
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "forbidden_table_function"),
        (f"SELECT * FROM url('{url}', 'LineAsString')", "forbidden_table_function"),
        ("SELECT * FROM system.users", "forbidden_database"),
        ("SELECT 1 SETTINGS readonly = 0", "forbidden_setting"),
    ]:
        done = subprocess.run([sys.executable, "-m", "sinks", "sql", sql], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 1 and reason in done.stderr, (sql, done.stderr)
        assert "Traceback" not in done.stderr and "root:" not in done.stdout
    count = [sys.executable, "-m", "sinks", "sql", "SELECT count() FROM events"]
    done = subprocess.run(count, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "0" in done.stdout, done.stderr
    assert hits == []


# Property: a forbidden call stays forbidden however deeply it is nested.
def _spelled(name: str) -> st.SearchStrategy[str]:
    cased = st.sampled_from([name, name.upper(), name.capitalize(), name.swapcase()])
    return st.tuples(cased, st.sampled_from(["{}", "`{}`", '"{}"']),
                     st.sampled_from(["", " ", "/* c */", "\n"])).map(
        lambda t: t[1].format(t[0]) + t[2])  # fmt: skip


TF = "forbidden_table_function"
TABLE_CORES = st.one_of(
    _spelled("file").map(lambda f: (f"{f}('{{secret}}', 'LineAsString')", TF)),
    _spelled("url").map(lambda f: (f"{f}('{{url}}', 'LineAsString')", TF)),
    _spelled("s3").map(lambda f: (f"{f}('{{url}}/k.csv')", TF)),
    st.sampled_from(["system.users", "`system`.users", '"system"."grants"', "system.processes"])
    .map(lambda t: (t, "forbidden_database")),
)  # fmt: skip
SCALAR_CORES = st.one_of(
    _spelled("file").map(lambda f: (f"{f}('{{secret}}')", "forbidden_function")),
    _spelled("dictGet").map(lambda f: (f"{f}('d', 'a', toUInt64(1))", "forbidden_function")),
)
WRAPPERS = [
    "SELECT * FROM ({q})",
    "WITH w AS ({q}) SELECT * FROM w",
    "SELECT * FROM system.one AS a INNER JOIN ({q}) AS b ON 1 = 1",
    "SELECT 1 UNION ALL {q}",
    "SELECT 1 WHERE 1 IN ({q})",
    "SELECT ({q}) AS v",
    "SELECT * FROM view({q})",
    "SELECT count() FROM ({q}) GROUP BY 1 HAVING count() > 0",
]


@st.composite
def nested_queries(draw) -> tuple[str, str]:
    if draw(st.booleans()):
        core, reason = draw(TABLE_CORES)
        query = f"SELECT * FROM {core}"
    else:
        core, reason = draw(SCALAR_CORES)
        query = f"SELECT {core} AS x"
    for wrapper in draw(st.lists(st.sampled_from(WRAPPERS), min_size=1, max_size=4)):
        query = wrapper.replace("{q}", query)
    if draw(st.booleans()):
        query = "EXPLAIN " + query
    return query, reason


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=nested_queries())
def test_a_forbidden_call_is_refused_however_it_is_nested(chdb_client, pulse_db, case):
    database, secret, url, hits = pulse_db
    query, reason = case
    with pytest.raises(QueryRefusedError) as refused:
        Guard(database).prepare(chdb_client, fill(query, database, secret, url))
    assert refused.value.reason == reason, query
    assert hits == []


def test_a_format_name_cannot_carry_sql(chdb_client, pulse_db):
    """The backend appends the format as ``FORMAT <name>``, and chDB runs multi-statement
    strings: a format that is not a plain name is refused, on every path."""
    database, _, _, _ = pulse_db
    hostile = ["TSV; DROP TABLE events", "TSV SETTINGS readonly = 0", "JSON\nSELECT 1", ""]
    for fmt in hostile:
        with pytest.raises(QueryRefusedError) as refused:
            run_query(_settings(chdb_client, database), "SELECT count() FROM events", fmt)
        assert refused.value.reason == "bad_format", fmt
    path = chdb_client.path
    server = QueryServer(
        lambda: clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database),
        "127.0.0.1", free_port(), database, admin_token="admin-format-0123456789",
        read_tokens={"tests": READ_TOKEN},
    ).start()  # fmt: skip
    try:
        for fmt, token in itertools.product(hostile[:3], [READ_TOKEN, "admin-format-0123456789"]):
            query = urllib.parse.urlencode({"query": "SELECT 1", "default_format": fmt})
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            request = urllib.request.Request(f"{server.url}/?{query}", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.headers["X-Pulse-Refused"] == "bad_format", (fmt, token)
    finally:
        server.stop()
    assert chdb_client.command(f"EXISTS TABLE {database}.events") == 1
