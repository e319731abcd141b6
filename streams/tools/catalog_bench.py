"""``python -m streams catalog bench``: a catalog sync of a large org, timed with its peak RSS,
next to its floor measured in the same run (reading the YAML alone).

The org: one organisation, departments, sub-departments and teams (``groups`` in all), and
``users`` people each in one team, every tenth in a second one; written as Backstage entity
files. The sync runs as the command users run, against a broker started here: once onto empty
topics (everything published), once more unchanged (nothing published).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from streams.catalog.entities import documents
from streams.kafka.broker import EmbeddedBroker, free_port

REPO = Path(__file__).resolve().parents[2]


def write_org(path: Path, users: int, groups: int, seed: int = 3) -> None:
    """Backstage entity YAML: 1 organisation, ~1% departments, ~10% sub-departments, the rest
    teams, each under a random group of the level above."""
    rng = random.Random(seed)
    levels = [("organization", 1), ("department", max(1, groups // 100)),
              ("sub-department", max(1, groups // 10))]  # fmt: skip
    levels.append(("team", groups - sum(n for _, n in levels)))
    names: list[list[str]] = []
    with path.open("w") as out:
        for depth, (kind, count) in enumerate(levels):
            names.append([f"{kind}-{i}" for i in range(count)])
            for name in names[-1]:
                spec = {"type": kind, "children": [],
                        "profile": {"displayName": name.replace("-", " ").title()}}  # fmt: skip
                if depth:
                    spec["parent"] = rng.choice(names[depth - 1])
                _entity(out, "Group", name, spec)
        teams = names[-1]
        for i in range(users):
            member_of = [rng.choice(teams)] + ([rng.choice(teams)] if i % 10 == 0 else [])
            spec = {"memberOf": member_of, "profile": {"displayName": f"User {i}"}}
            _entity(out, "User", f"user-{i}", spec)


def _entity(out, kind: str, name: str, spec: dict) -> None:
    out.write("---\n")
    yaml.safe_dump({"apiVersion": "backstage.io/v1alpha1", "kind": kind,
                    "metadata": {"name": name}, "spec": spec}, out)  # fmt: skip


def _sync(env: dict[str, str], path: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, output) of one ``catalog sync`` process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "catalog", "sync", str(path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"catalog sync exited {proc.returncode}: {output[-2000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, output


def run(users: int, groups: int) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder, EmbeddedBroker(port=free_port()) as broker:
        path = Path(folder) / "org.yaml"
        write_org(path, users, groups)
        print(f"org: {users:,} users, {groups:,} groups, {path.stat().st_size / 1e6:.1f} MB "
              "of entity YAML", flush=True)  # fmt: skip
        started = time.perf_counter()
        sum(1 for _ in documents(path))
        results["parse_s"] = time.perf_counter() - started
        print(f"floor: reading the YAML alone: {results['parse_s']:.1f} s", flush=True)
        tag = f"{int(time.time())}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        env.update(PULSE_KAFKA_BOOTSTRAP=broker.bootstrap, PULSE_TOPIC_PEOPLE=f"people-{tag}",
                   PULSE_TOPIC_GROUPS=f"groups-{tag}", PULSE_TOPIC_CATALOG=f"plugins-{tag}",
                   PULSE_USER_ID_SECRET="benchmark-secret-0123456789")  # fmt: skip
        for run_name in ("first", "unchanged"):
            seconds, rss, output = _sync(env, path)
            results[f"{run_name}_s"], results[f"{run_name}_rss_mb"] = seconds, rss
            published = [line for line in output.splitlines() if "published" in line]
            print(f"sync ({run_name}): {seconds:.1f} s, peak RSS {rss:.0f} MB; "
                  + "; ".join(published), flush=True)  # fmt: skip
    return results


def result_line(results: dict[str, float]) -> str:
    return (
        f"RESULT first_s={results['first_s']:.1f} unchanged_s={results['unchanged_s']:.1f} "
        f"parse_s={results['parse_s']:.1f} "
        f"share={results['parse_s'] / results['first_s']:.2f} "
        f"rss_mb={max(results['first_rss_mb'], results['unchanged_rss_mb']):.0f}"
    )
