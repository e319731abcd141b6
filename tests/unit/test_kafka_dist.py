"""The pinned Kafka runtime: version, pins and their verification (no Maven, no network)."""

from __future__ import annotations

import hashlib

import pytest

from streams.errors import BrokerError
from streams.kafka import dist as kafka_dist
from streams.kafka.node import Node, render_config


def test_every_pinned_jar_has_a_sha256_and_the_broker_and_tools_are_pinned():
    pins = kafka_dist.read_pins()
    version = kafka_dist.kafka_version()
    assert f"kafka_2.13-{version}.jar" in pins
    assert f"kafka-tools-{version}.jar" in pins
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in pins.values())


def test_verify_refuses_a_changed_missing_or_extra_jar(tmp_path):
    (tmp_path / "a.jar").write_bytes(b"a")
    (tmp_path / "b.jar").write_bytes(b"b")
    pins = {n: hashlib.sha256(n[0].encode()).hexdigest() for n in ("a.jar", "b.jar")}
    kafka_dist.verify(tmp_path, pins)
    (tmp_path / "b.jar").write_bytes(b"changed")
    with pytest.raises(BrokerError, match=r"sha256 pin.*b\.jar"):
        kafka_dist.verify(tmp_path, pins)
    (tmp_path / "b.jar").unlink()
    with pytest.raises(BrokerError, match=r"missing \['b\.jar'\]"):
        kafka_dist.verify(tmp_path, pins)
    (tmp_path / "c.jar").write_bytes(b"c")
    with pytest.raises(BrokerError, match=r"extra \['c\.jar'\]"):
        kafka_dist.verify(tmp_path, {"a.jar": pins["a.jar"]})


def _settings(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_a_single_node_config_needs_no_replicas_and_joins_groups_at_once(tmp_path):
    node = Node(1, 9092, 9093, tmp_path)
    conf = _settings(render_config("127.0.0.1", node, [node]))
    assert conf["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert conf["offsets.topic.replication.factor"] == "1"
    assert conf["transaction.state.log.min.isr"] == "1"
    assert conf["group.initial.rebalance.delay.ms"] == "0"
    assert conf["auto.create.topics.enable"] == "false"


def test_three_nodes_replicate_three_times_and_write_to_two(tmp_path):
    nodes = [Node(i, 9000 + i, 9100 + i, tmp_path / str(i)) for i in (1, 2, 3)]
    conf = _settings(render_config("127.0.0.1", nodes[1], nodes))
    assert conf["node.id"] == "2"
    assert conf["controller.quorum.voters"] == (
        "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    )
    assert conf["listeners"] == "PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102"
    assert conf["default.replication.factor"] == "3"
    assert conf["min.insync.replicas"] == "2"
    assert conf["transaction.state.log.min.isr"] == "2"
