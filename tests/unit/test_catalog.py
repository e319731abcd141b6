import pytest

from streams.catalog import CatalogError
from streams.catalog.plugins import load_file
from streams.catalog.topic import diff

GOOD = """
plugins:
  - id: Catalog
    title: Software Catalog
    tags: [core]
  - id: techdocs
"""


def test_shipped_example_is_valid():
    from pathlib import Path

    records = load_file(Path(__file__).parents[2] / "deploy" / "catalog" / "plugins.yaml")
    assert {"catalog", "techdocs", "search", "scaffolder"} <= set(records)


def test_ids_are_normalised_and_defaults_filled(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    records = load_file(path)
    assert records["catalog"]["title"] == "Software Catalog"
    assert records["techdocs"] == {"id": "techdocs", "title": "", "owner": "", "lifecycle": "",
                                   "package": "", "category": "", "tags": []}  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["plugins:\n  - id: root\n", "plugins:\n  - title: no id\n", "plugins:\n  - id: a\n  - id: A\n",
     "plugins:\n  - id: a\n    colour: red\n", "plugins: [", "nothing: here\n"],
)  # fmt: skip
def test_invalid_files_are_refused(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError):
        load_file(path)


def test_diff_adds_updates_and_deletes():
    current = {"a": {"id": "a", "title": "A"}, "b": {"id": "b", "title": "B"}}
    wanted = {"a": {"id": "a", "title": "A"}, "b": {"id": "b", "title": "B2"}, "c": {"id": "c"}}
    upserts, deletes = diff(current, wanted)
    assert set(upserts) == {"b", "c"} and deletes == []
    upserts, deletes = diff(wanted, {"c": {"id": "c"}})
    assert upserts == {} and deletes == ["a", "b"]
