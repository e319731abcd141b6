"""Catalog sync against the real broker: add, update, delete; workers' readers follow."""

from __future__ import annotations

import subprocess
import sys

from schemas import PLUGIN_INFO
from streams.catalog.table import TopicTable
from streams.catalog.topic import read_topic

from .conftest import REPO, wait_for


def sync(env, path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "streams", "catalog", "sync", str(path)],
        cwd=REPO, env=env.child(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return out.stdout


def test_sync_adds_updates_and_deletes(pulse_env, broker, tmp_path):
    topic = f"catalog-{pulse_env['PULSE_TOPIC_RAW']}"
    pulse_env.values["PULSE_TOPIC_CATALOG"] = topic
    path = tmp_path / "plugins.yaml"
    path.write_text("plugins:\n  - id: catalog\n    title: Catalog\n  - id: techdocs\n")
    assert "published 2" in sync(pulse_env, path)
    reader = TopicTable(broker.bootstrap, topic, PLUGIN_INFO).start()
    try:
        assert reader("catalog")["title"] == "Catalog"
        assert "published 0, deleted 0" in sync(pulse_env, path)  # idempotent

        path.write_text("plugins:\n  - id: catalog\n    title: Software Catalog\n"
                        "  - id: search\n")  # fmt: skip
        out = sync(pulse_env, path)
        assert "published 2 (catalog, search)" in out and "deleted 1 (techdocs)" in out
        assert set(read_topic(broker.bootstrap, topic, PLUGIN_INFO)) == {"catalog", "search"}
        wait_for(lambda: reader("techdocs") is None and reader("search") is not None, 10,
                 "the running reader to follow the update")  # fmt: skip
        assert reader("catalog")["title"] == "Software Catalog"
    finally:
        reader.stop()
    late_reader = TopicTable(broker.bootstrap, topic, PLUGIN_INFO).start()  # a worker starting now
    try:
        assert len(late_reader) == 2 and late_reader("techdocs") is None
    finally:
        late_reader.stop()
