"""The Avro schemas shipped in ``schemas/avro``, parsed once and indexed by fingerprint.

Files are named ``<Record>.v<N>.avsc``. Logical types are stripped before parsing so that
timestamps decode as plain epoch-millisecond ints and uuids as strings (faster, and what every
stage wants); the Parsing Canonical Form, hence the fingerprint, does not include them.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

AVRO_DIR = Path(__file__).parent / "avro"
_FILE_NAME = re.compile(r"^(?P<record>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>\d+)\.avsc$")


@dataclass(frozen=True)
class Schema:
    """One version of one record."""

    name: str  # Avro full name, e.g. pulse.v1.AnalyticsEvent
    version: int
    definition: dict[str, Any]  # as written in the file
    parsed: Any  # fastavro-parsed, logical types stripped
    fingerprint: bytes  # CRC-64-AVRO of the canonical form, little-endian (wire order)

    @property
    def json(self) -> str:
        return json.dumps(self.definition, separators=(",", ":"))


def _strip_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical_types(v) for v in node]
    return node


def load_schema(definition: dict[str, Any], version: int = 0) -> Schema:
    """Parse one schema definition (also used for writer schemas found in a registry)."""
    full_name = definition.get("name", "")
    if "." not in full_name and definition.get("namespace"):
        full_name = f"{definition['namespace']}.{full_name}"
    canonical = to_parsing_canonical_form(definition)
    return Schema(
        name=full_name,
        version=version,
        definition=definition,
        parsed=parse_schema(_strip_logical_types(copy.deepcopy(definition)), named_schemas={}),
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


class Catalog:
    """All versions of all records, by name and by fingerprint."""

    def __init__(self, schemas: list[Schema]) -> None:
        self._by_name: dict[str, list[Schema]] = {}
        self._by_fingerprint: dict[bytes, Schema] = {}
        for schema in sorted(schemas, key=lambda s: (s.name, s.version)):
            self._by_name.setdefault(schema.name, []).append(schema)
            self._by_fingerprint[schema.fingerprint] = schema

    @classmethod
    def from_directory(cls, directory: Path = AVRO_DIR) -> Catalog:
        schemas = []
        for path in sorted(directory.glob("*.avsc")):
            match = _FILE_NAME.match(path.name)
            if not match:
                raise ValueError(f"{path.name}: schema files are named <Record>.v<N>.avsc")
            schema = load_schema(json.loads(path.read_text()), int(match["version"]))
            if schema.name.rsplit(".", 1)[-1] != match["record"]:
                raise ValueError(f"{path.name}: file name does not match record {schema.name}")
            schemas.append(schema)
        return cls(schemas)

    def names(self) -> list[str]:
        return list(self._by_name)

    def versions(self, name: str) -> list[Schema]:
        try:
            return list(self._by_name[name])
        except KeyError:
            raise KeyError(f"no schema named {name}") from None

    def latest(self, name: str) -> Schema:
        return self.versions(name)[-1]

    def by_fingerprint(self, fp: bytes) -> Schema | None:
        return self._by_fingerprint.get(fp)


@functools.cache
def default_catalog() -> Catalog:
    """The schemas shipped with this package (parsed once per process)."""
    return Catalog.from_directory()
