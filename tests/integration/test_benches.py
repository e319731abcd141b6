"""The documented benchmark commands run end to end (at toy sizes) and print their RESULT lines.

Figures are not judged here (benchmarks are commands, not timed tests); the commands and the
shape of what they print are.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def test_streams_bench_prints_rates_ceilings_and_result():
    text = _run("streams", "bench", "--events", "3000", "--no-quix", "--window-keys", "1000")
    assert re.search(
        r"^pulse: [\d,]+ events/s, peak RSS \d+ MB; the worker used [\d.]+ cores "
        r"\([\d,]+ events per CPU second\)$",
        text,
        re.M,
    ), text
    assert re.search(r"^per CPU second: .* share [\d.]+$", text, re.M), text
    stamped = re.search(r"^  \((\d+)% of events stamped with groups", text, re.M)
    assert stamped and int(stamped[1]) >= 80, text  # 95% of sessions have a user
    ceilings = re.findall(r"^ceiling: .*: ([\d,]+) events/s$", text, re.M)
    assert len(ceilings) == 3 and all(int(c.replace(",", "")) > 0 for c in ceilings), text
    result = text.strip().splitlines()[-1]
    assert re.search(r"^vm speed: fixed pure-Python loop in [\d.]+ s$", text, re.M), text
    assert re.search(r"^pulse exactly-once: [\d,]+ events/s = [\d.]+x at-least-once$", text, re.M)
    match = re.fullmatch(
        r"RESULT streams=(\d+) quix=nan ratio=nan ceiling=(\d+) share=([\d.]+) rss_mb=(\d+)",
        result,
    )
    assert match and int(match[1]) > 0 and int(match[2]) > 0 and int(match[4]) > 0, result


def test_sinks_bench_bills_merges_and_prints_result():
    text = _run("sinks", "bench", "--events", "5000", "--batch-rows", "2000", "--rounds", "2")
    lines = re.findall(
        r"^(sink|baseline|engine) \(round \d/2\): .* \(([\d.]+) s; ([\d.]+) CPU s, "
        r"of which ([\d.]+) s in the kernel "
        r"and ([\d.]+) s merging after the last commit\)$",
        text,
        re.M,
    )
    assert re.search(r"^vm speed: fixed pure-Python loop in [\d.]+ s$", text, re.M), text
    assert [name for name, *_ in lines] == ["sink", "baseline", "engine"] * 2, text
    for _, _, cpu, kernel, tail in lines:
        assert float(kernel) <= float(cpu) and float(tail) <= float(cpu)
    result = text.strip().splitlines()[-1]
    match = re.fullmatch(
        r"RESULT sink=(\d+) baseline=(\d+) ratio=([\d.]+) engine=(\d+) share=([\d.]+)", result
    )
    assert match and int(match[1]) > 0 and int(match[2]) > 0 and int(match[4]) > 0, result
    per_core = {"sink": [], "baseline": [], "engine": []}
    pattern = r"^(sink|baseline|engine) .*, ([\d,]+) events/s per core"
    for name, rate in re.findall(pattern, text, re.M):
        per_core[name].append(int(rate.replace(",", "")))
    for name, printed in (("sink", match[1]), ("baseline", match[2]), ("engine", match[4])):
        assert abs(statistics.median(per_core[name]) - int(printed)) <= 1, (name, text)
    assert abs(int(match[1]) / int(match[4]) - float(match[5])) <= 0.01, result


def test_catalog_bench_syncs_an_org_twice_and_prints_its_result():
    text = _run("streams", "catalog", "bench", "--users", "500", "--groups", "50")
    assert re.search(r"^org: 500 users, 50 groups, [\d.]+ MB of entity YAML$", text, re.M), text
    assert "people: 500 in groups: published 500, deleted 0; groups: 50: published 50" in text
    assert "people: 500 in groups: published 0, deleted 0; groups: 50: published 0" in text
    match = re.search(
        r"RESULT first_s=([\d.]+) unchanged_s=([\d.]+) parse_s=([\d.]+) share=([\d.]+) "
        r"rss_mb=(\d+)", text.strip().splitlines()[-1],
    )  # fmt: skip
    assert match and float(match[1]) > 0 and int(match[5]) > 0, text
