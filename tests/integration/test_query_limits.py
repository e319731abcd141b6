"""A heavy analyst query on the sink's own query port: bounded in memory, killed when its client
goes away, never more than the configured number at once, and ingestion commits all along."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

from schemas import ENRICHED_EVENT, Encoder, default_catalog
from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings

from .conftest import READ_TOKEN, wait_for
from .test_sink import committed, enriched, publish

MEMORY_LIMIT = 256 << 20
ADMIN = "admin-limits-0123456789abcdef"
ENDLESS = "SELECT sum(number) FROM numbers_mt(1000000000000000)"  # days of work at any speed


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


def _post(url: str, sql: str, token: str = READ_TOKEN) -> tuple[int, str | None, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url + "/", sql.encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return resp.status, None, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Pulse-Refused"), exc.read().decode()


def _answers(url: str) -> bool:
    try:
        return _post(url, "SELECT count() FROM events")[0] == 200
    except OSError:
        return False


def _metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    values = [
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")
    ]
    return values[0] if values else 0.0


def _hold(url: str, sql: str) -> socket.socket:
    """Send a query and keep the connection open without reading the answer."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    body = sql.encode()
    auth = f"Authorization: Bearer {READ_TOKEN}".encode()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Length: %d\r\n\r\n%s"
                 % (auth, len(body), body))  # fmt: skip
    return sock


def test_heavy_queries_are_bounded_and_ingestion_keeps_committing(pulse_env, broker, processes):
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    url = pulse_env["PULSE_QUERY_URL"]
    sink = processes.start(
        "sink", "sinks", "run", "--table", "events",
        PULSE_QUERY_MAX_MEMORY_BYTES=str(MEMORY_LIMIT),
        PULSE_QUERY_MAX_ROWS_TO_READ=str(10**18), PULSE_QUERY_MAX_BYTES_TO_READ=str(10**18),
        PULSE_QUERY_MAX_EXECUTION_S="36000", PULSE_QUERY_MAX_CONCURRENT="3",
        PULSE_QUERY_ADMIN_TOKEN=ADMIN,
    )  # fmt: skip
    wait_for(lambda: _answers(url), 120, "the query port")

    # Memory: the query is stopped at its limit; the process grows by no more than that.
    rss = _kib(sink.pid, "VmRSS")
    status, reason, body = _post(url, "SELECT groupArray(number) FROM numbers(400000000)")
    assert (status, reason) == (413, "limit_exceeded") and "MEMORY_LIMIT_EXCEEDED" in body
    peak = _kib(sink.pid, "VmHWM")
    assert peak - rss < MEMORY_LIMIT + (192 << 20), (rss, peak)

    # Two endless queries hold two of the three slots; a third query still runs, a fourth
    # concurrent one is refused with 429.
    held = [_hold(url, ENDLESS), _hold(url, ENDLESS)]
    wait_for(lambda: _metric(url, "pulse_query_in_flight") == 2, 60, "two queries in flight")
    blocker = _hold(url, ENDLESS)
    wait_for(lambda: _metric(url, "pulse_query_in_flight") == 3, 60, "three queries in flight")
    status, reason, _ = _post(url, "SELECT 1")
    assert (status, reason) == (429, "too_many_queries")
    blocker.close()
    wait_for(lambda: _metric(url, "pulse_query_in_flight") == 2, 60, "the third one killed")

    # Ingestion goes on while the two run.
    encode = Encoder(default_catalog().latest(ENRICHED_EVENT))
    publish(broker, pulse_env["PULSE_TOPIC_ENRICHED"], [encode(enriched(i)) for i in range(300)])
    group = f"{pulse_env['PULSE_GROUP_PREFIX']}-events"
    topic = pulse_env["PULSE_TOPIC_ENRICHED"]
    wait_for(lambda: committed(broker, group, topic) == 300, 120, "300 offsets committed")
    assert _post(url, "SELECT count() FROM events") == (200, None, "300\n")
    assert _metric(url, "pulse_query_in_flight") == 2  # still running: they cannot finish

    # Gone clients: their queries are killed in ClickHouse, not left to run.
    for sock in held:
        sock.close()
    wait_for(lambda: _metric(url, "pulse_query_in_flight") == 0, 60, "both killed")
    assert _metric(url, "pulse_query_cancelled_total") == 3
    running = "SELECT count() FROM system.processes WHERE query LIKE '%numbers_mt(1000000000%'"
    wait_for(lambda: _post(url, f"{running} AND query NOT LIKE '%system.processes%'", ADMIN)
             == (200, None, "0\n"), 60, "no endless query left in ClickHouse")  # fmt: skip
    assert "Traceback" not in processes.log("sink")
