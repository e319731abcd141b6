"""The plugin catalog file: PluginInfo records by plugin id, from YAML
(``deploy/catalog/plugins.yaml``). Enrichment looks plugins up by the id Backstage puts in the
analytics context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from streams.catalog import CatalogError
from streams.job.enrich import normalise_plugin_id


class PluginEntry(BaseModel):
    model_config = {"extra": "forbid"}

    id: str = Field(min_length=1, max_length=128)
    title: str = ""
    owner: str = ""
    lifecycle: str = ""
    package: str = ""
    category: str = ""
    tags: list[str] = []

    @field_validator("id")
    @classmethod
    def _normalise(cls, value: str) -> str:
        plugin_id = normalise_plugin_id(value)
        if plugin_id == "unknown":
            raise ValueError(f"{value!r} is not a plugin id (root/app mean 'no plugin')")
        return plugin_id


class CatalogFile(BaseModel):
    model_config = {"extra": "forbid"}

    plugins: list[PluginEntry]


def is_plugin_file(document: Any) -> bool:
    """A plugin file is one mapping with a ``plugins`` list; entity files hold entities."""
    return isinstance(document, dict) and "plugins" in document and "kind" not in document


def load_file(path: Path) -> dict[str, dict[str, Any]]:
    """PluginInfo records by id, from a YAML file (see deploy/catalog/plugins.yaml)."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    return records(path, document)


def records(path: Path, document: Any) -> dict[str, dict[str, Any]]:
    try:
        parsed = CatalogFile.model_validate(document)
    except ValidationError as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    out: dict[str, dict[str, Any]] = {}
    for entry in parsed.plugins:
        if entry.id in out:
            raise CatalogError(f"{path}: plugin {entry.id!r} is listed twice")
        out[entry.id] = entry.model_dump()
    return out
