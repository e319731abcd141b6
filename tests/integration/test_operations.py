"""What SREs deploy, checked by the tools that read it: alert rules by promtool (syntax and unit
tests), the Prometheus config, Grafana dashboards against the metrics the processes really
export and the tables ClickHouse really has, and every alert's runbook in docs/operators.md."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from sinks.metrics import SinkMetrics
from sinks.schema.migrate import migrate
from streams.collector.replies import CollectorMetrics
from streams.metrics import StreamsMetrics

from .conftest import REPO

PROMETHEUS = REPO / "deploy" / "prometheus"
GRAFANA = REPO / "deploy" / "grafana"
PROMTOOL = "/usr/bin/promtool"  # Debian's prometheus package; make test installs it


def promtool(*args: str) -> str:
    out = subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_alert_rules_pass_promtool_and_their_unit_tests():
    assert "SUCCESS: 7 rules found" in promtool("check", "rules", "alerts.yml")
    promtool("test", "rules", "alerts_test.yml")
    promtool("check", "config", "prometheus.yml")


def exported_series() -> set[str]:
    names = set()
    registries = (StreamsMetrics().registry, SinkMetrics().registry, CollectorMetrics().registry)
    for registry in registries:
        for family in registry.collect():
            names.add(family.name)
            if family.type == "counter":
                names.add(f"{family.name}_total")
            if family.type == "histogram":
                names |= {f"{family.name}_{s}" for s in ("bucket", "count", "sum")}
    return names


def promql_expressions() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    board = json.loads((GRAFANA / "dashboards" / "pulse-operations.json").read_text())
    exprs += [t["expr"] for p in board["panels"] for t in p["targets"]]
    return exprs


def test_alerts_and_dashboards_use_only_series_that_exist():
    exported = exported_series()
    used = {m for e in promql_expressions() for m in re.findall(r"\bpulse_[a-z0-9_]+", e)}
    assert used and not (used - exported), sorted(used - exported)
    # One naming scheme: pulse_<component>_<what>[_<unit>], counters end in _total.
    for name in exported:
        assert re.fullmatch(r"pulse_(streams|sink|collector)_[a-z0-9_]+", name), name


def grafana_sql(query: str) -> str:
    """Grafana's ClickHouse macros, expanded as the plugin does for a fixed range."""
    query = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 >= now() - INTERVAL 1 DAY AND \1 <= now()",
                   query)  # fmt: skip
    return re.sub(r"\$__dateFilter\((\w+)\)", r"\1 >= today() - 1 AND \1 <= today()", query)


def test_usage_dashboard_queries_run_on_the_pulse_tables(chdb_client):
    migrate(chdb_client, "pulse_grafana")
    board = json.loads((GRAFANA / "dashboards" / "pulse-usage.json").read_text())
    for p in board["panels"]:
        for target in p["targets"]:
            sql = grafana_sql(target["rawSql"]).replace("pulse.", "pulse_grafana.")
            chdb_client.query(sql)  # runs: every table and column exists


def test_provisioning_points_at_the_dashboards_and_both_datasources():
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/pulse.yml").read_text())
    uids = {d["uid"] for d in sources["datasources"]}
    for name in ("pulse-operations.json", "pulse-usage.json"):
        board = json.loads((GRAFANA / "dashboards" / name).read_text())
        for p in board["panels"]:
            assert p["datasource"]["uid"] in uids, (name, p["title"])
    yaml.safe_load((GRAFANA / "provisioning/dashboards/pulse.yml").read_text())


@pytest.mark.parametrize(
    "alert",
    [r["alert"] for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
     for r in g["rules"]],
)  # fmt: skip
def test_every_alert_has_a_runbook(alert):
    readme = (REPO / "docs" / "operators.md").read_text()
    assert f"### Runbook: {alert}" in readme
    rules = (PROMETHEUS / "alerts.yml").read_text()
    assert f"docs/operators.md#runbook-{alert.lower()}" in rules
