"""What a catalog sync publishes for groups: changes, a daily snapshot, deletions."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.catalog import CatalogError
from streams.catalog.sync import DAY_MS, Sources, group_changes, read, same_snapshot

DAY = 20_000 * DAY_MS  # midnight UTC of some day


def record(ref, members, at, **kw):
    return {"ref": ref, "type": "team", "title": ref, "parents": [], "ancestors": [],
            "members": members, "direct_members": members, "deleted": False,
            "synced_at": at, **kw}  # fmt: skip


def test_an_unchanged_group_is_republished_once_a_day():
    current = {"a": record("a", 3, DAY + 1000)}
    assert group_changes(current, {"a": record("a", 3, DAY + 5000)}, DAY + 5000) == {}
    tomorrow = DAY + DAY_MS + 10
    assert group_changes(current, {"a": record("a", 3, tomorrow)}, tomorrow) == {
        "a": record("a", 3, tomorrow)}  # fmt: skip
    assert same_snapshot(current["a"], record("a", 3, DAY + DAY_MS - 1))


def test_a_changed_group_is_republished_at_once():
    current = {"a": record("a", 3, DAY + 1000)}
    assert set(group_changes(current, {"a": record("a", 4, DAY + 2000)}, DAY + 2000)) == {"a"}


def test_a_group_gone_gets_one_deleted_record_with_no_members():
    current = {"a": record("a", 3, DAY), "b": record("b", 2, DAY)}
    changes = group_changes(current, {"a": record("a", 3, DAY + 10)}, DAY + 10)
    assert changes == {"b": record("b", 0, DAY + 10, deleted=True)}
    current["b"] = changes["b"]
    assert group_changes(current, {"a": record("a", 3, DAY + 20)}, DAY + 20) == {}


def test_sources_need_something_and_a_token_with_the_url(tmp_path):
    with pytest.raises(CatalogError, match="nothing to sync"):
        Sources()
    with pytest.raises(CatalogError, match="--token-file"):
        Sources(backstage_url="http://backstage:7007")


def test_plugin_files_and_entity_files_are_told_apart(tmp_path):
    plugins = tmp_path / "plugins.yaml"
    plugins.write_text("plugins:\n  - id: catalog\n")
    org = Path(__file__).parents[1] / "fixtures" / "org" / "org.yaml"
    found = read(Sources((plugins, org)))
    assert set(found.plugins or {}) == {"catalog"}
    assert found.org is not None and found.org.report.users == 21
    only_plugins = read(Sources((plugins,)))
    assert only_plugins.org is None
    again = tmp_path / "more.yaml"
    again.write_text("plugins:\n  - id: Catalog\n")
    with pytest.raises(CatalogError, match="'catalog' is in two files"):
        read(Sources((plugins, again)))
