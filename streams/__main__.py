"""``python -m streams``: the embedded broker, topic setup, demo traffic and the faust worker."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

import click
from tqdm import tqdm

from streams.errors import StreamsError
from streams.settings import KafkaSettings, WorkerSettings

log = logging.getLogger("pulse.streams")

# `python -m streams kafka NAME`: Apache Kafka's CLI tools (the kafka-*.sh scripts' main classes).
KAFKA_TOOLS = {
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "topics": "org.apache.kafka.tools.TopicCommand",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "configs": "org.apache.kafka.tools.ConfigCommand",
}


@click.group()
def cli() -> None:
    """Pulse streams stage."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9092, show_default=True, type=int, help="First node's port.")
@click.option("--brokers", default=1, show_default=True, type=click.IntRange(1, 5))
@click.option("--partitions", type=int, help="Partitions per topic [PULSE_PARTITIONS].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the log here across runs (default: a temporary folder removed at exit).",
)
@click.option("--no-topics", is_flag=True, help="Do not create Pulse's topics.")
@click.option(
    "--stop-grace-s",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 30),
    help="On SIGINT/SIGTERM, serve this long before stopping (clients stopped by the same "
    "signal finish first); the nodes then ignore a signal to this process's group.",
)
def broker(
    host: str, port: int, brokers: int, partitions: int | None, data_dir: Path | None,
    no_topics: bool, stop_grace_s: float,
) -> None:  # fmt: skip
    """Run Apache Kafka (KRaft) on loopback until SIGINT/SIGTERM."""
    from streams.catalog.topic import ensure_topics_of
    from streams.kafka.broker import EmbeddedBroker
    from streams.kafka.topics import apply_retention, ensure_topics, pulse_topics, wait_for_broker

    settings = KafkaSettings(kafka_bootstrap=f"{host}:{port}")
    if partitions:
        settings.partitions = partitions
    embedded = EmbeddedBroker(
        host, port, brokers=brokers, data_dir=data_dir, own_session=stop_grace_s > 0
    )
    stop = {"signal": None}

    def _stop(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        embedded.start()
        if not no_topics:
            admin = wait_for_broker(embedded.bootstrap)
            names = pulse_topics(settings)
            settings.replication_factor = min(brokers, 3)
            created = ensure_topics(admin, names, settings.partitions, min(brokers, 3))
            ensure_topics_of(admin, settings)
            log.info("topics created: %s", ", ".join(created) or "none (all existed)")
            if settings.events_retention_days:
                log.info("%s", apply_retention(admin, settings))
        log.info(
            "Kafka ready on %s (%d node%s, started in %.1fs)",
            embedded.bootstrap, brokers, "s" if brokers > 1 else "", embedded.started_in_s,
        )  # fmt: skip
        while stop["signal"] is None and all(n.running for n in embedded.nodes):
            time.sleep(0.2)
        lingering = time.monotonic() + (stop_grace_s if stop["signal"] is not None else 0)
        while time.monotonic() < lingering and all(n.running for n in embedded.nodes):
            time.sleep(0.1)
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        embedded.stop()
    log.info("broker stopped")


@cli.command(
    "kafka", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("tool", type=click.Choice(sorted(KAFKA_TOOLS)))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def kafka_tool(tool: str, args: tuple[str, ...]) -> None:
    """Run one of Apache Kafka's own CLI tools from the pinned jars, e.g. `python -m streams
    kafka consumer-groups --bootstrap-server 127.0.0.1:9092 --describe --all-groups`."""
    import os
    import shutil

    from streams.kafka import dist as kafka_dist

    try:
        libs = kafka_dist.ensure_installed()
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from exc
    java = shutil.which("java") or "java"
    log4j = f"-Dlog4j2.configurationFile={kafka_dist.TOOLS_LOG4J_CONFIG}"
    argv = [java, log4j, "-cp", kafka_dist.classpath(libs), KAFKA_TOOLS[tool], *args]
    os.execv(java, argv)


@cli.command()
def collect() -> None:
    """Run the HTTP collector for Backstage frontends (POST /v1/events) until SIGINT/SIGTERM."""
    from streams.collector.server import exclusions, serve
    from streams.settings import CollectorSettings

    try:
        settings = CollectorSettings()
        settings.tokens()
        exclusions(settings, lambda _: None)
    except Exception as exc:  # pydantic ValidationError, a bad token or exclusion list: say which
        raise click.ClickException(f"invalid settings: {exc}") from exc
    logging.getLogger().setLevel(settings.log_level.upper())
    serve(settings)


@cli.command("collect-load")
@click.option("--url", required=True, help="http://host:port/v1/events")
@click.option("--token", envvar="PULSE_LOAD_TOKEN", required=True)
@click.option("--seconds", default=10.0, show_default=True)
@click.option("--max-events", default=200_000, show_default=True)
@click.option("--batch", default=50, show_default=True, help="Events per request.")
@click.option("--clients", default=8, show_default=True, help="Concurrent connections.")
def collect_load(url, token, seconds, max_events, batch, clients) -> None:
    """Load a collector from this process; print events/s and latency percentiles."""
    from streams.tools.collect_load import run

    r = run(url, token, seconds, max_events, batch, clients)
    click.echo(
        f"RESULT events_per_s={r['events_per_s']:.0f} requests={r['requests']} "
        f"p50_ms={r['p50_ms']:.1f} p95_ms={r['p95_ms']:.1f} p99_ms={r['p99_ms']:.1f} "
        f"accepted={r['accepted']} statuses={r['statuses']} seconds={r['seconds']:.1f}"
    )


@cli.command()
def topics() -> None:
    """Create Pulse's topics on PULSE_KAFKA_BOOTSTRAP (idempotent) and set the event topics'
    retention to PULSE_EVENTS_RETENTION_DAYS."""
    from streams.catalog.topic import ensure_topics_of
    from streams.kafka.topics import apply_retention, ensure_topics, pulse_topics, wait_for_broker

    settings = KafkaSettings()
    try:
        admin = wait_for_broker(settings.kafka_bootstrap)
        created = ensure_topics(
            admin, pulse_topics(settings), settings.partitions, settings.replication_factor
        )
        ensure_topics_of(admin, settings)
        kept = apply_retention(admin, settings)
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created: {', '.join(created) or 'none (all existed)'}")
    click.echo(kept)


@cli.command()
@click.option("--count", type=int, help="Send this many events, then stop.")
@click.option("--rate", type=float, default=0, help="Events per second (0 = as fast as possible).")
@click.option("--seed", type=int, default=1, show_default=True, help="Reproducible traffic.")
@click.option("--late", type=float, default=0.02, show_default=True, help="Share of late events.")
@click.option("--duplicates", type=float, default=0.005, show_default=True)
@click.option("--users", type=int, default=200, show_default=True)
@click.option("--start-ms", type=int, help="Event time of the first event (default: now).")
@click.option(
    "--batch",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Events per message: >1 sends per-session batch envelopes, as collectors do.",
)
@click.option("--progress/--no-progress", default=True)
def produce(
    count: int | None,
    rate: float,
    seed: int,
    late: float,
    duplicates: float,
    users: int,
    start_ms: int | None,
    batch: int,
    progress: bool,
) -> None:
    """Publish realistic Backstage analytics traffic to the raw topic."""
    from streams.kafka.producer import EventProducer, SessionBatcher
    from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
    from streams.tools.traffic import Traffic, TrafficConfig

    if count is None and rate <= 0:
        raise click.UsageError("give --count, --rate or both")
    settings = KafkaSettings()
    now_ms = int(time.time() * 1000)
    traffic = Traffic(
        TrafficConfig(
            seed=seed,
            start_ms=start_ms if start_ms is not None else now_ms,
            mean_gap_ms=1000.0 / rate if rate > 0 else 50.0,
            users=users,
            late_fraction=late,
            duplicate_fraction=duplicates,
        )
    )
    stopping = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(flag=True))
    try:
        admin = wait_for_broker(settings.kafka_bootstrap)
        ensure_topics(
            admin, pulse_topics(settings), settings.partitions, settings.replication_factor
        )
        producer = EventProducer(settings.kafka_bootstrap, settings.topic_raw)
        batcher = SessionBatcher(producer, batch) if batch > 1 else None
        bar = tqdm(total=count, unit="ev", disable=not progress, mininterval=1.0)
        started = last_flush = time.monotonic()
        sent = 0
        try:
            while (count is None or sent < count) and not stopping["flag"]:
                event = next(traffic)
                if batcher is not None:
                    batcher.add(event)
                else:
                    producer.send(event)
                sent += 1
                bar.update(1)
                if rate > 0:
                    now = time.monotonic()
                    if batcher is not None and now - last_flush >= 1.0:
                        batcher.flush()  # a browser ships its queue about once a second
                        last_flush = now
                    ahead = sent / rate - (now - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except KeyboardInterrupt:
            pass
        finally:
            bar.close()
            if batcher is not None:
                batcher.flush()
            producer.flush()
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from exc
    elapsed = time.monotonic() - started
    click.echo(f"sent {sent} events in {elapsed:.1f}s ({sent / max(elapsed, 1e-9):.0f} ev/s)")


@cli.command()
def worker() -> None:
    """Run the faust worker (decode, enrich, forward, count)."""
    from faust.worker import Worker

    from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
    from streams.worker.app import create_app

    try:
        settings = WorkerSettings()
    except Exception as exc:  # pydantic ValidationError: name the missing variable
        raise click.ClickException(f"invalid settings: {exc}") from exc
    from schemas import ERASURE, PERSON, PLUGIN_INFO
    from streams.catalog.org import GroupRefs
    from streams.catalog.table import TopicTable
    from streams.catalog.topic import ensure_topics_of

    try:
        admin = wait_for_broker(settings.kafka_bootstrap, timeout_s=120)
        ensure_topics(
            admin, pulse_topics(settings), settings.partitions, settings.replication_factor
        )
        ensure_topics_of(admin, settings)
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from exc
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = settings.kafka_bootstrap
    catalog = TopicTable(bootstrap, settings.topic_catalog, PLUGIN_INFO).start()
    people = TopicTable(bootstrap, settings.topic_people, PERSON, load=GroupRefs()).start()
    erased = TopicTable(bootstrap, settings.topic_erasures, ERASURE).start()
    log.info("catalog: %d plugins, %d people in groups; %d ids erased", len(catalog), len(people),
             len(erased))  # fmt: skip
    app = create_app(settings, plugins=catalog, people=people, erased=erased)
    try:
        runner = Worker(app, loglevel=settings.log_level, quiet=True)
        # faust's start-up spinner sets the root logger to DEBUG whenever the level is WARNING
        # or above, so every aiokafka debug record is built and discarded (3% of the worker's
        # time in a profile). A service has no terminal to spin on.
        runner.spinner = None
        runner.execute_from_commandline()
    finally:
        catalog.stop()
        people.stop()
        erased.stop()


@cli.command()
@click.option("--events", default=200_000, show_default=True)
@click.option("--batch", default=50, show_default=True, help="Events per envelope.")
@click.option("--partitions", default=4, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--quix/--no-quix", default=True, help="Also run the Quix Streams peer.")
@click.option("--window-keys", default=100_000, show_default=True, help="For the RSS probe.")
@click.option(
    "--exactly-once/--no-exactly-once",
    default=True,
    help="Also run the worker with PULSE_PROCESSING_GUARANTEE=exactly_once.",
)
@click.option(
    "--quix-venv",
    type=click.Path(path_type=Path),
    default=Path(".pulse/bench/quix-venv"),
    show_default=True,
)
def bench(
    events: int,
    batch: int,
    partitions: int,
    seed: int,
    quix: bool,
    window_keys: int,
    quix_venv: Path,
    exactly_once: bool,
) -> None:
    """Throughput of the streams job next to Quix Streams on the same input, same run."""
    from streams.tools.bench import result_line, run

    logging.getLogger().setLevel(logging.WARNING)
    results = run(events, batch, partitions, seed, quix, window_keys, quix_venv, exactly_once)
    click.echo(result_line(results))


@cli.group()
def catalog() -> None:
    """What Pulse knows besides events: plugins, people's groups (compacted topics)."""


@catalog.command("sync")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--from-backstage",
    "backstage_url",
    metavar="URL",
    help="Backstage backend base URL: users and groups from its catalog API.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding a static external-access token for --from-backstage (re-read each sync).",
)
@click.option(
    "--watch",
    "watch_s",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Sync again every SECONDS until SIGTERM/SIGINT; a failed sync keeps the last catalog.",
)
@click.option("--allow-empty", is_flag=True, help="Publish an org with no users or groups.")
def catalog_sync(
    paths: tuple[Path, ...], backstage_url: str | None, token_file: Path | None,
    watch_s: float | None, allow_empty: bool,
) -> None:  # fmt: skip
    """Make the catalog topics hold exactly PATHS (plugin files, Backstage entity files with
    Users and Groups) and the catalog behind --from-backstage."""
    from streams.catalog import CatalogError
    from streams.catalog.sync import CatalogSync, Sources
    from streams.catalog.topic import ensure_topics_of
    from streams.kafka.topics import wait_for_broker
    from streams.settings import CatalogSettings

    try:
        settings = CatalogSettings()
        sources = Sources(paths, backstage_url, token_file)
    except CatalogError as exc:
        raise click.UsageError(str(exc)) from exc
    except Exception as exc:  # pydantic ValidationError: name the variable
        raise click.ClickException(f"invalid settings: {exc}") from exc
    sync = CatalogSync(settings, sources, allow_empty=allow_empty)
    try:
        ensure_topics_of(wait_for_broker(settings.kafka_bootstrap), settings)
        if watch_s is None:
            for line in sync.round():
                click.echo(line)
            return
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from exc
    stopping = {"flag": False}
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.update(flag=True))
    sync.watch(watch_s, lambda: stopping["flag"])


@catalog.command("demo-org")
@click.option("--users", default=200, show_default=True, help="As `produce --users`.")
@click.option("--seed", default=1, show_default=True, help="As `produce --seed`.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout.")
def catalog_demo_org(users: int, seed: int, out: Path | None) -> None:
    """Backstage Users and Groups for the users `produce` sends with the same --users and
    --seed (an example org for the local stack)."""
    import yaml

    from streams.tools.demo_org import entities
    from streams.tools.traffic import Traffic, TrafficConfig

    text = yaml.safe_dump_all(entities(Traffic(TrafficConfig(seed=seed, users=users)).users))
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)


@catalog.command("bench")
@click.option("--users", default=50_000, show_default=True)
@click.option("--groups", default=5_000, show_default=True)
def catalog_bench(users: int, groups: int) -> None:
    """A sync of a large org (entity files) with its time and peak RSS, beside reading the
    YAML alone, on a broker started for it."""
    from streams.tools.catalog_bench import result_line, run

    logging.getLogger().setLevel(logging.WARNING)
    click.echo(result_line(run(users, groups)))


if __name__ == "__main__":
    sys.exit(cli())
