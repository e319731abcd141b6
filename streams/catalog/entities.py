"""Backstage catalog entity files: multi-document YAML (``kind: User``, ``kind: Group``, …) as
Backstage reads them, following ``kind: Location`` entries' relative file targets the way a
catalog location does. Each entity comes with where it was found, for errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from streams.catalog import CatalogError

MAX_FILES = 10_000  # a location tree is bounded; a loop between locations is read once
# libyaml's loader when PyYAML was built with it (several times faster on large org files).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def documents(path: Path) -> Iterator[Any]:
    """Each YAML document of a file in turn (an empty document is skipped): a large org file
    is never held whole."""
    try:
        with path.open("rb") as stream:
            for document in yaml.load_all(stream, Loader=_LOADER):
                if document is not None:
                    yield document
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc


def first_document(path: Path) -> Any:
    return next(documents(path), None)


def entities(paths: list[Path]) -> Iterator[tuple[str, Any]]:
    """``(where, entity)`` for each document of the files and of the files their Locations
    name. A target with a URL scheme is not followed (sync such catalogs with
    ``--from-backstage``) and is an error, so a partial catalog is never published."""
    queue = [p.resolve() for p in paths]
    seen: set[Path] = set()
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        if len(seen) > MAX_FILES:
            raise CatalogError(f"{path}: more than {MAX_FILES} files through Location targets")
        for index, document in enumerate(documents(path)):
            where = f"{path}#{index + 1}"
            if isinstance(document, dict) and str(document.get("kind", "")).lower() == "location":
                queue.extend(_targets(where, path, document))
                continue
            yield where, document


def _targets(where: str, path: Path, location: dict[str, Any]) -> list[Path]:
    spec = location.get("spec") if isinstance(location.get("spec"), dict) else {}
    targets = list(spec.get("targets") or []) + ([spec["target"]] if spec.get("target") else [])
    out = []
    for target in targets:
        if not isinstance(target, str) or "://" in target:
            raise CatalogError(
                f"{where}: Location target {target!r} is not a relative file "
                "(read such catalogs with --from-backstage)"
            )
        out.append((path.parent / target).resolve())
    return out
