"""``python -m sinks``: migrate ClickHouse, run the sink workers, query with SQL."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from sinks.errors import ClickHouseError, SinkError
from sinks.query.questions import GROUPINGS
from sinks.settings import ClickHouseSettings, SinkSettings

log = logging.getLogger("pulse.sinks")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@click.group()
def cli() -> None:
    """Pulse sinks: Kafka -> ClickHouse."""


@cli.command()
@click.option("--dry-run", is_flag=True, help="Print every statement of a fresh install; run none.")
def migrate(dry_run: bool) -> None:
    """Apply pending migrations to PULSE_CLICKHOUSE_URL (idempotent); print what was applied.

    With PULSE_CLICKHOUSE_CLUSTER set, DDL runs ON CLUSTER with Replicated and Distributed
    tables. Then each table's retention: PULSE_EVENTS_RETENTION_DAYS (events, dead letters) and
    PULSE_ROLLUPS_RETENTION_DAYS (rollups, counts, group snapshots)."""
    from sinks.clickhouse import connect, redact
    from sinks.schema.migrate import migrate as apply
    from sinks.schema.migrate import plan
    from sinks.schema.retention import apply_retention

    _setup_logging()
    settings = ClickHouseSettings()
    cluster = settings.clickhouse_cluster
    if dry_run:
        for statement in plan(settings.database, cluster):
            click.echo(statement.rstrip() + ";\n")
        return
    try:
        client = connect(settings.clickhouse_url, **settings.connect_options())
        applied = apply(client, settings.database, cluster=cluster)
        retention = apply_retention(client, settings.database, settings.events_retention_days,
                                    settings.rollups_retention_days, cluster)  # fmt: skip
    except (SinkError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    target = f"{redact(settings.clickhouse_url)} database {settings.database}"
    for name in applied:
        click.echo(f"applied {name}")
    if not applied:
        click.echo(f"{target}: up to date")
    click.echo("kept: " + ", ".join(retention))


@cli.command()
@click.option(
    "--table",
    "tables",
    multiple=True,
    type=click.Choice(["events", "counts_1m", "dead_letters", "group_members"]),
    help="Tables to sink (default: all).",
)
@click.option("--migrate/--no-migrate", "do_migrate", default=True, show_default=True)
@click.option("--serve-queries/--no-serve-queries", default=None, help="Default: when embedded.")
def run(tables: tuple[str, ...], do_migrate: bool, serve_queries: bool | None) -> None:
    """Consume enriched events, window counts and dead letters into ClickHouse until
    SIGINT/SIGTERM (then each sink flushes, commits and leaves its group)."""
    from sinks.clickhouse import redact
    from sinks.metrics import SinkMetrics
    from sinks.ops_server import OpsServer

    _setup_logging()
    settings = SinkSettings()
    client = _migrated_client(settings, do_migrate)
    log.info("writing to %s", redact(settings.clickhouse_url))

    metrics = SinkMetrics()
    server = None
    if serve_queries if serve_queries is not None else settings.embedded:
        server = _query_server(settings, settings.query_bind, settings.query_port, metrics.registry,
                               _erasures(settings))  # fmt: skip
        log.info("read-only SQL on %s, dashboard on %s/dashboard", server.url, server.url)
    sinks = _sinks(settings, client, metrics, tables)
    failed = threading.Event()
    ops = None
    if settings.metrics_port:
        ops = OpsServer(
            metrics.registry,
            settings.metrics_bind,
            settings.metrics_port,
            ready=lambda: all(s.ready for s in sinks) and not failed.is_set(),
        ).start()
        log.info("metrics, health and readiness on %s (/metrics, /healthz, /readyz)", ops.url)
    _run_until_signalled(sinks, failed, settings.flush_deadline_s)
    if server:
        server.stop()
    if ops:
        ops.stop()
    sys.exit(1 if failed.is_set() else 0)


def _migrated_client(settings: SinkSettings, do_migrate: bool):
    from sinks.clickhouse import connect
    from sinks.schema.migrate import migrate as apply
    from sinks.schema.retention import apply_retention

    cluster = settings.clickhouse_cluster
    try:
        client = connect(settings.clickhouse_url, **settings.connect_options())
        if do_migrate:
            for name in apply(client, settings.database, cluster=cluster):
                log.info("applied migration %s", name)
            kept = apply_retention(client, settings.database, settings.events_retention_days,
                                   settings.rollups_retention_days, cluster)  # fmt: skip
            log.info("kept: %s", ", ".join(kept))
    except (SinkError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    return client


def _sinks(settings: SinkSettings, client, metrics, tables: tuple[str, ...]) -> list:
    """PULSE_CONSUMERS members per table, sharing the table's group and splitting its
    partitions; the first member shares the migrating client."""
    from sinks.clickhouse import connect
    from sinks.tables import table_specs
    from sinks.worker import TableSink

    specs = table_specs(settings)

    def connection():
        return connect(settings.clickhouse_url, **settings.connect_options())

    try:
        return [
            TableSink(
                specs[name],
                settings,
                client if member == 0 else connection(),
                metrics,
                [connection() for _ in range(settings.insert_parallelism - 1)],
            )
            for name in (tables or specs)
            for member in range(settings.consumers)
        ]
    except SinkError as exc:
        raise click.ClickException(str(exc)) from exc


def _run_until_signalled(sinks: list, failed: threading.Event, deadline_s: float) -> None:
    """Each sink on a thread of its own until SIGTERM/SIGINT or a sink fails; then stop all.
    A flush step that outlasts ``deadline_s`` stops the process at once (exit 1): nothing it
    did is committed, so a restart replays it."""

    def _run(sink) -> None:
        try:
            sink.run()
        except Exception:
            log.exception("sink %s failed", sink.spec.table)
            failed.set()

    threads = [threading.Thread(target=_run, args=(s,), name=s.spec.table) for s in sinks]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for thread in threads:
        thread.start()
    while not stop.is_set() and not failed.is_set():
        stop.wait(0.2)
        _exit_if_stalled(sinks, deadline_s)
    for sink in sinks:
        sink.stop()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
            _exit_if_stalled(sinks, deadline_s)


def _exit_if_stalled(sinks: list, deadline_s: float) -> None:
    stalled = [s for s in (sink.stalled(time.monotonic(), deadline_s) for sink in sinks) if s]
    if stalled:
        log.critical(
            "flush stalled past PULSE_FLUSH_DEADLINE_S (%.0f s): %s; exiting for a restart "
            "from the last commit",
            deadline_s, "; ".join(stalled),
        )  # fmt: skip
        logging.shutdown()
        os._exit(1)  # the stuck thread cannot be stopped; nothing it did is committed


def _query_server(settings: ClickHouseSettings, bind: str, port: int, registry=None,
                  erasures=None):  # fmt: skip
    """The query port, its pool of clients on the database, started; ``erasures``: it erases
    (the process that owns an embedded chDB, or the standalone port of a server)."""
    from sinks.clickhouse import connect
    from sinks.query.server import QueryServer

    admin = settings.query_admin_token
    return QueryServer(
        lambda: connect(settings.clickhouse_url, settings.database, **settings.connect_options()),
        bind,
        port,
        settings.database,
        registry,
        admin_token=admin.get_secret_value() if admin else None,
        limits=settings.query_limits(),
        max_concurrent=settings.query_max_concurrent,
        read_tokens=settings.read_tokens(),
        min_group_size=settings.min_group_size,
        erasures=erasures,
    ).start()


@cli.command()
@click.argument("query")
@click.option("--format", "fmt", default="PrettyCompact", show_default=True)
def sql(query: str, fmt: str) -> None:
    """Run a read-only SQL query.

    Embedded mode: through the running sink that owns chDB (PULSE_QUERY_URL), or by opening
    chDB directly when nothing runs. Server mode: against PULSE_CLICKHOUSE_URL.
    """
    from sinks.query.sql import run_query

    settings = ClickHouseSettings()
    try:
        sys.stdout.write(run_query(settings, query, fmt))
    except ClickHouseError as exc:
        raise click.ClickException(str(exc)) from None
    except SinkError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
@click.option("--port", type=int, help="Default: PULSE_QUERY_PORT.")
@click.option("--bind", help="Default: PULSE_QUERY_BIND.")
def dashboard(port: int | None, bind: str | None) -> None:
    """Serve the dashboard (and read-only SQL) against PULSE_CLICKHOUSE_URL until SIGINT.

    For a ClickHouse server; in embedded mode the running sink already serves it."""
    _setup_logging()
    settings = SinkSettings()
    try:
        server = _query_server(settings, bind or settings.query_bind, port or settings.query_port,
                               erasures=_erasures(settings))  # fmt: skip
    except (SinkError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"dashboard: {server.url}/dashboard (Ctrl-C stops)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


def _erasures(settings: SinkSettings):
    """Erasures as the query port serves them (one at a time; each on a client of its own)."""
    from sinks.clickhouse import connect
    from sinks.erasure.eraser import Eraser
    from sinks.erasure.person import named

    lock = threading.Lock()
    secret = settings.user_id_secret.get_secret_value() if settings.user_id_secret else None

    def erasures(action: str, request: dict) -> dict:
        person = named(request, secret)
        by = str(request.get("requested_by") or "admin token")[:200]
        with lock:
            client = connect(settings.clickhouse_url, **settings.connect_options())
            try:
                eraser = Eraser(client, settings, say=log.info)
                done = eraser.verify(person) if action == "verify" else eraser.erase(person, by)
            finally:
                client.close()
        return done.as_json()

    return erasures


@cli.command()
@click.option("--user", help="The person's user entity ref (user:default/jane).")
@click.option("--id", "user_id", help="Or the keyed id their events carry (64 hex).")
@click.option("--verify", is_flag=True, help="Prove the person's last erasure still holds.")
def erase(user: str | None, user_id: str | None, verify: bool) -> None:
    """Erase a person: their events and dead letters deleted, the rollups they touched
    recounted, a receipt in pulse.erasures; kept out of every later insert and replay.

    Embedded mode: through the running sink's query port (PULSE_QUERY_ADMIN_TOKEN), or here
    when nothing runs. Server mode: against PULSE_CLICKHOUSE_URL. Prints the receipt (or the
    verification) as JSON; exits 1 when a verification fails."""
    import getpass
    import json

    from sinks.query.sql import query_server_up

    _setup_logging()
    settings = SinkSettings()
    request = {"user": user, "user_id": user_id, "requested_by": f"cli:{getpass.getuser()}"}
    try:
        if settings.embedded and query_server_up(settings.query_url):
            answer = _erase_via_server(settings, "verify" if verify else "erase", request)
        else:
            answer = _erasures(settings)("verify" if verify else "erase", request)
    except (SinkError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(answer, indent=2))
    if verify and not answer.get("ok"):
        sys.exit(1)


def _erase_via_server(settings: SinkSettings, action: str, request: dict) -> dict:
    import json

    import urllib3

    admin = settings.query_admin_token
    if admin is None:
        raise click.ClickException("the running sink erases with PULSE_QUERY_ADMIN_TOKEN: set it")
    path = "/v1/erasures/verify" if action == "verify" else "/v1/erasures"
    resp = urllib3.request(
        "POST", settings.query_url + path, body=json.dumps(request).encode(),
        headers={"Authorization": f"Bearer {admin.get_secret_value()}",
                 "Content-Type": "application/json"},
        timeout=settings.erasure_wait_s + 600, retries=False,
    )  # fmt: skip
    answer = json.loads(resp.data or b"{}")
    if resp.status != 200:
        raise click.ClickException(f"{answer.get('error')}: {answer.get('detail')}")
    return answer


FORMATS = {"table": "PrettyCompactMonoBlock", "csv": "CSVWithNames", "json": "JSONEachRow",
           "tsv": "TSVWithNames"}  # fmt: skip


@cli.command()
@click.argument("name", required=False)
@click.option("--list", "list_", is_flag=True, help="List the saved questions.")
@click.option("--since", default="7d", show_default=True, help="7d, 24h, 90m, 2w or a date.")
@click.option("--until", default="now", show_default=True)
@click.option("--group-by", type=click.Choice(GROUPINGS), default="day", show_default=True)
@click.option("--instance", default="", help="Only this Backstage instance.")
@click.option("--plugin", default="", help="Only this plugin id.")
@click.option("--frontend-system", type=click.Choice(["", "LEGACY", "NEW", "UNKNOWN"]), default="")
@click.option("--group", default="", help="One group's members (a ref: group:default/web).")
@click.option("--group-type", default="", help="Rows of groups of this type (team, ...).")
@click.option(
    "--identity",
    type=click.Choice(["verified", "all"]),
    default=None,
    help="Only users Backstage verified, or all (default: verified when any is).",
)
@click.option("--limit", default=20, show_default=True, help="Rows of top-N questions.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="table")
def query(name, list_, since, until, group_by, instance, plugin, frontend_system, group,
          group_type, identity, limit, fmt):  # fmt: skip
    """Answer a saved question (see --list) over a time range.

    Reads the rollups where they hold the answer, raw events where it needs more; the range,
    filters and limit are query parameters, never SQL text."""
    import json
    from datetime import UTC, datetime

    from sinks.query import api, privacy, questions, rendering
    from sinks.query.sql import run_query

    if list_ or not name:
        width = max(len(n) for n in questions.QUESTIONS)
        for q in questions.QUESTIONS.values():
            grouped = f" [--group-by {'|'.join(GROUPINGS)}]" if q.grouped else ""
            click.echo(f"{q.name:<{width}}  {q.title}{grouped}")
        return
    settings = ClickHouseSettings()
    try:
        question = questions.get(name)
        now = datetime.now(UTC)
        start, end = questions.parse_moment(since, now), questions.parse_moment(until, now)
        filters = api.resolve_identity(
            question,
            questions.Filters(instance, plugin, frontend_system, group, group_type, identity or ""),
            settings.database, start, end,
            lambda sql, params, out: run_query(settings, sql, out, params).encode(),
        )  # fmt: skip
        sql_text, params = questions.render(
            question, settings.database, since=start, until=end, group_by=group_by,
            filters=filters, limit=limit,
        )  # fmt: skip
        if not privacy.applies(question, filters):
            sys.stdout.write(run_query(settings, sql_text, FORMATS[fmt], params))
            return
        output = run_query(settings, sql_text, "JSON", params).encode()
        k = settings.min_group_size
        columns, rows = api.published(question, filters, output, k)
        if fmt == "json":
            sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))
        elif fmt == "table":
            sys.stdout.write(rendering.table_text(columns, rows, k))
        else:
            sys.stdout.write(rendering.csv_text(columns, rows, k, "\t" if fmt == "tsv" else ","))
    except ClickHouseError as exc:
        raise click.ClickException(str(exc)) from None
    except SinkError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
@click.option("--events", default=500_000, show_default=True)
@click.option("--batch", default=50, show_default=True, help="Events per envelope.")
@click.option("--partitions", default=4, show_default=True)
@click.option("--batch-rows", default=100_000, show_default=True, help="PULSE_BATCH_ROWS.")
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where chDB writes its parts (default: a temporary directory), e.g. /dev/shm.",
)
@click.option(
    "--rounds",
    default=3,
    show_default=True,
    type=click.IntRange(1, 20),
    help="Sink and baseline runs, alternating; RESULT has the medians.",
)
def bench(
    events: int,
    batch: int,
    partitions: int,
    batch_rows: int,
    seed: int,
    data_dir: Path | None,
    rounds: int,
) -> None:
    """Kafka -> ClickHouse events/s (committed), Avro passthrough vs Python decoding, next to
    ClickHouse's own cost for the same rows."""
    from schemas.machine import vm_speed
    from sinks.bench import result_line
    from sinks.bench import run as run_bench

    logging.getLogger().setLevel(logging.WARNING)
    click.echo(f"vm speed: fixed pure-Python loop in {vm_speed():.2f} s")
    results = run_bench(events, batch, partitions, batch_rows, seed, data_dir, rounds)
    click.echo(result_line(results))


if __name__ == "__main__":
    cli()
