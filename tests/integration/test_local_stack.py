"""``make run``'s stack: comes up from nothing, data grows, Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sinks.errors import SinkError
from sinks.query.sql import query_via_server
from streams.kafka.broker import free_port

from .conftest import REPO, wait_for


def count(url: str, table: str, token: str) -> int:
    try:
        sql = f"SELECT count() AS n FROM pulse.{table}"
        text = query_via_server(url, sql, "JSONEachRow", token=token)
    except SinkError:
        return 0
    return int(json.loads(text)["n"])


def status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def check_credentials(url: str, token: str) -> None:
    """Loopback is no exception: without the read token nothing that reads analytics answers."""
    for path in ("/?query=SELECT%201", "/dashboard", "/v1/questions", "/v1/questions/top_plugins"):
        assert status(f"{url}{path}") == 401, path
        assert status(f"{url}{path}", {"Authorization": "Bearer not-the-token-0123456"}) == 401
    assert status(f"{url}/v1/questions", {"Authorization": f"Bearer {token}"}) == 200
    assert status(f"{url}/ping") == 200


def pids_with_env(marker: str) -> list[int]:
    """Processes whose environment mentions ``marker`` (this stack's data directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# The series docs/operators.md documents, with the ones that must move under load.
STREAMS_SERIES = [
    "pulse_streams_messages_in_total",
    "pulse_streams_events_in_total",
    "pulse_streams_events_out_total",
    "pulse_streams_consumer_lag",
    "pulse_streams_rebalances_total",
    "pulse_streams_window_keys",
    "pulse_streams_message_processing_seconds_bucket",
    "pulse_streams_flush_seconds_count",
]
SINK_SERIES = ["pulse_sink_messages_total", "pulse_sink_rows_written_total",
               "pulse_sink_insert_seconds_bucket", "pulse_sink_batch_rows_count",
               "pulse_sink_consumer_lag", "pulse_sink_partition_assignments_total",
               "pulse_query_requests_total"]  # fmt: skip


def scrape(url: str) -> dict[str, float]:
    """Sum of every sample of each series name."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def check_operations(streams: str, sink: str) -> None:
    for base in (streams, sink):
        assert urllib.request.urlopen(f"{base}/healthz", timeout=10).status == 200
        wait_for(lambda b=base: _ready(b), 30, f"{base}/readyz")
    first = {streams: scrape(streams), sink: scrape(sink)}
    for base, series in ((streams, STREAMS_SERIES), (sink, SINK_SERIES)):
        missing = [name for name in series if name not in first[base]]
        assert not missing, f"{base}: {missing}"
    moving = [
        (streams, "pulse_streams_events_in_total"),
        (streams, "pulse_streams_events_out_total"),
        (sink, "pulse_sink_rows_written_total"),
        (sink, "pulse_sink_messages_total"),
    ]
    for base, name in moving:
        wait_for(lambda b=base, n=name: scrape(b)[n] > first[b][n], 30, f"{name} to move")


def _ready(base: str) -> bool:
    try:
        return urllib.request.urlopen(f"{base}/readyz", timeout=5).status == 200
    except OSError:
        return False


CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


def check_dashboard(login: str, url: str, screenshot: Path) -> None:
    """Log in at ``login`` (the token leaves the address bar for an HttpOnly, SameSite=Strict
    cookie), then open ``url`` in headless Chromium: every chart with data is drawn."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(login, wait_until="networkidle")
            assert "token=" not in page.url, page.url
            cookie = next(c for c in page.context.cookies() if c["name"] == "pulse_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
            assert page.evaluate("document.cookie") == ""  # scripts cannot read it
            page.goto(url, wait_until="networkidle")
            for chart in ("usage", "plugins", "trend", "templates", "search"):
                plot = page.locator(f"#{chart}.js-plotly-plot")
                plot.wait_for(timeout=15_000)
                assert plot.locator("g.trace").count() > 0, chart
                # drawn marks: bars are paths, lines are paths, markers are points
                assert plot.locator("g.trace path").count() > 0, chart
            assert int(page.locator(".tile b").first.inner_text().replace(",", "")) > 0
            assert not errors, errors
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()


def test_stack_comes_up_grows_and_stops_cleanly(tmp_path):
    data = tmp_path / "pulse-data"
    query_port, streams_port, sink_port = free_port(), free_port(), free_port()
    collector_port = free_port()
    url = f"http://127.0.0.1:{query_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    cmd = [sys.executable, "-m", "deploy.local", "--data-dir", str(data),
           "--kafka-port", str(free_port()), "--query-port", str(query_port),
           "--streams-web-port", str(streams_port), "--sink-metrics-port", str(sink_port),
           "--collector-port", str(collector_port),
           "--rate", "300"]  # fmt: skip
    log = open(tmp_path / "stack.log", "wb")  # noqa: SIM115

    def printed() -> str:
        return (tmp_path / "stack.log").read_text(errors="replace")

    stack = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (data / "query-token").exists(), 60, "the query token")
        token = (data / "query-token").read_text().strip()

        def events() -> int:  # a stack that stopped fails now, with its log, not in minutes
            if stack.poll() is not None:
                pytest.fail(f"the stack exited with {stack.returncode}: {printed()[-3000:]}")
            return count(url, "events", token)

        first = wait_for(events, 60, "events in ClickHouse")
        wait_for(lambda: events() > first, 30, "events to keep growing")
        wait_for(lambda: count(url, "counts_1m", token) > 0, 30, "window counts")
        # The example catalog is published as traffic starts; workers pick it up as it comes.
        known = "SELECT countIf(plugin_known) FROM pulse.events"
        wait_for(lambda: int(query_via_server(url, known, "TSV", token=token)) > 0, 60,
                 "enriched plugins")  # fmt: skip
        # So is the demo org: its people's events carry their groups; its groups are counted.
        stamped = "SELECT countIf(notEmpty(groups)) FROM pulse.events"
        wait_for(lambda: int(query_via_server(url, stamped, "TSV", token=token)) > 0, 60,
                 "events stamped with groups")  # fmt: skip
        wait_for(lambda: count(url, "group_members", token) >= 12, 60, "the demo org's groups")
        for secret in ("user-id-secret", "query-token"):
            assert (data / secret).stat().st_mode & 0o077 == 0, secret
        wait_for(lambda: count(url, "usage_hourly", token) > 0, 30, "the rollups")
        check_operations(f"http://127.0.0.1:{streams_port}", f"http://127.0.0.1:{sink_port}")
        check_credentials(url, token)
        # The address the stack printed logs the browser in once; the page then needs no token.
        address = next(w for w in printed().split() if w.startswith(f"{url}/dashboard?token="))
        check_dashboard(address, f"{url}/dashboard?since=24h", tmp_path / "dashboard.png")
        collector = f"http://127.0.0.1:{collector_port}"
        wait_for(lambda: _ready(collector), 30, "the collector")
        assert (data / "collector-token").stat().st_mode & 0o077 == 0
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(30)
    output = printed()
    assert "Traceback" not in output, output[-3000:]
    wait_for(lambda: not pids_with_env(str(data)), 15, "every stack process to exit")
