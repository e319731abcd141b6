"""``python -m deploy.local``: run the whole pipeline on this machine, with demo traffic.

Starts, under one supervisor (honcho): Apache Kafka (KRaft, one node; ``--brokers 3`` for a
three-node cluster), the faust streams worker, the sink (which applies migrations, owns the
embedded chDB and serves read-only SQL), the collector and a traffic generator; the worker, the
sink and the collector are started again when they exit with a failure. Every process
waits for what it needs, so start order does not matter. Ctrl-C stops them all (SIGTERM, then
SIGKILL after 5 s); Kafka keeps serving for 3 s of that, so the others stop first, and its JVMs
die with their supervisor. Every run starts from empty
topics and an empty ClickHouse unless ``--keep-data`` is given, which keeps both.
The traffic process publishes ``deploy/catalog/plugins.yaml`` to the catalog topic first.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import socket
import sys
from pathlib import Path

from honcho.manager import Manager
from honcho.printer import Printer


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _secret(path: Path) -> str:
    """A per-checkout secret (the user-id HMAC key, the collector's token), created once and
    kept private."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def _restarted(command: str) -> str:
    """``command``, started again after a failure exit (a worker that finds itself stuck stops
    with exit 1 and relies on that), as Kubernetes and docker-compose's ``restart`` do; a clean
    exit ends it. Ctrl-C stops the loop with the process (honcho signals the group)."""
    return f'until {command}; do echo "exited with $?; restarting in 2 s"; sleep 2; done'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".pulse"))
    parser.add_argument("--kafka-port", type=int, default=9092)
    parser.add_argument("--query-port", type=int, default=8124)
    parser.add_argument("--streams-web-port", type=int, default=6066)
    parser.add_argument("--sink-metrics-port", type=int, default=9465)
    parser.add_argument("--collector-port", type=int, default=7007)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--brokers", type=int, default=1, choices=[1, 3], help="Kafka nodes")
    parser.add_argument("--rate", type=float, default=200.0, help="demo events per second")
    parser.add_argument("--no-traffic", action="store_true", help="do not generate demo traffic")
    parser.add_argument("--keep-data", action="store_true", help="keep ClickHouse data")
    args = parser.parse_args(argv)

    for name, port in [
        ("--kafka-port", args.kafka_port),
        ("--query-port", args.query_port),
        ("--streams-web-port", args.streams_web_port),
        ("--sink-metrics-port", args.sink_metrics_port),
        ("--collector-port", args.collector_port),
    ]:
        if not _port_free(port):
            parser.error(f"port {port} ({name}) is in use: is another stack running?")

    data = args.data_dir.resolve()
    if not args.keep_data:
        shutil.rmtree(data / "clickhouse", ignore_errors=True)
        shutil.rmtree(data / "streams", ignore_errors=True)
        shutil.rmtree(data / "kafka-data", ignore_errors=True)
    data.mkdir(parents=True, exist_ok=True)
    env = _environment(args, data)
    py = shlex.quote(sys.executable)
    processes = {
        # Kafka outlives the others by 3 s of Ctrl-C, so their last flushes and commits land
        # (test_local_stack.py: a worker stopping after the broker logs aiokafka tracebacks).
        "broker": f"exec {py} -m streams broker --port {args.kafka_port} "
        f"--brokers {args.brokers} --data-dir {shlex.quote(str(data / 'kafka-data'))} "
        "--stop-grace-s 3",
        "streams": _restarted(f"{py} -m streams worker"),
        "sink": _restarted(f"{py} -m sinks run"),
        "collector": _restarted(f"{py} -m streams collect"),
    }
    if not args.no_traffic:
        # The demo publishes the example plugin catalog and an org for its users first, then
        # traffic in envelopes of up to 20 events per session, flushed every second, as the
        # browser module ships them.
        catalog = shlex.quote(str(Path(__file__).parents[1] / "catalog" / "plugins.yaml"))
        org = shlex.quote(str(data / "org.yaml"))
        processes["traffic"] = (
            f"{py} -m streams catalog demo-org --out {org} && "
            f"{py} -m streams catalog sync {catalog} {org} && "
            f"exec {py} -m streams produce --rate {args.rate} --batch 20 --no-progress"
        )

    _announce(args, data)
    manager = Manager(Printer(sys.stdout))
    for name, cmd in processes.items():
        manager.add_process(name, cmd, env=env)
    manager.loop()
    return manager.returncode or 0


def _environment(args: argparse.Namespace, data: Path) -> dict[str, str]:
    """What every process of the stack runs with; the secrets are files only this user reads."""
    _secret(data / "query-token")  # before the sink starts: it reads the file then
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{args.kafka_port}",
        "PULSE_PARTITIONS": str(args.partitions),
        "PULSE_REPLICATION_FACTOR": str(args.brokers),
        "PULSE_CLICKHOUSE_URL": f"chdb://{data / 'clickhouse'}",
        "PULSE_QUERY_PORT": str(args.query_port),
        "PULSE_QUERY_URL": f"http://127.0.0.1:{args.query_port}",
        "PULSE_DATA_DIR": str(data / "streams"),
        "PULSE_WEB_PORT": str(args.streams_web_port),
        "PULSE_METRICS_PORT": str(args.sink_metrics_port),
        "PULSE_USER_ID_SECRET": _secret(data / "user-id-secret"),
        "PULSE_COLLECTOR_PORT": str(args.collector_port),
        "PULSE_COLLECTOR_TOKENS": f"local={_secret(data / 'collector-token')}",
        # The token of a Backstage backend running Pulse's plugin: its users are verified.
        "PULSE_COLLECTOR_BACKEND_TOKENS": f"local={_secret(data / 'backend-token')}",
        # The query port's read token: the sink accepts it, the CLI sends it.
        "PULSE_QUERY_TOKEN_FILE": str(data / "query-token"),
        # The admin token: erasures (python -m sinks erase, Backstage's backend plugin).
        "PULSE_QUERY_ADMIN_TOKEN": _secret(data / "admin-token"),
        # Backstage's dev server, unless the caller names its own origins.
        "PULSE_CORS_ORIGINS": os.environ.get("PULSE_CORS_ORIGINS")
        or "http://localhost:3000,http://127.0.0.1:3000",
    }


def _announce(args: argparse.Namespace, data: Path) -> None:
    """Where everything is, and how to reach it."""
    print(f"Pulse local stack: Kafka 127.0.0.1:{args.kafka_port}, ClickHouse (chDB) in {data}")
    # Opened once, this address leaves a session cookie and drops the token from the address
    # bar (as Jupyter does); the token stays in a file only this user can read.
    query_token = _secret(data / "query-token")
    print(f"Dashboard: http://127.0.0.1:{args.query_port}/dashboard?token={query_token}")
    print(f"Collector: http://127.0.0.1:{args.collector_port}/v1/events "
          f"(bearer token in {data / 'collector-token'}; Backstage's backend plugin's, "
          f"whose users are verified, in {data / 'backend-token'})")  # fmt: skip
    print(f"Questions: http://127.0.0.1:{args.query_port}/v1/questions "
          f"(bearer token in {data / 'query-token'})")  # fmt: skip
    # The CLI reads .pulse/query-token by itself; another data directory is named.
    token_file = data / "query-token"
    cli = "" if data == Path(".pulse").resolve() else f"PULSE_QUERY_TOKEN_FILE={token_file} "
    print(f'Query it: {cli}{sys.executable} -m sinks sql "SELECT count() FROM pulse.events"')
    print(f"          {sys.executable} -m sinks query --list")
    print(f"Erase a person: PULSE_QUERY_ADMIN_TOKEN=$(cat {data / 'admin-token'}) "
          f"{sys.executable} -m sinks erase --user user:default/<name>")  # fmt: skip
    print("Ctrl-C stops everything.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
