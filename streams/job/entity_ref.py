"""Backstage entity references: ``[kind:][namespace/]name`` (pure)."""

from __future__ import annotations

from typing import NamedTuple

DEFAULT_NAMESPACE = "default"


class EntityRef(NamedTuple):
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}" if self.name else ""


EMPTY = EntityRef("", "", "")


def parse(ref: str | None) -> EntityRef:
    """Parse like Backstage's ``parseEntityRef``: kind and namespace are case-insensitive
    (lower-cased), the namespace defaults to ``default``; anything unparsable gives EMPTY."""
    if not ref:
        return EMPTY
    kind, sep, rest = ref.partition(":")
    if not sep:
        kind, rest = "", ref
    namespace, sep, name = rest.partition("/")
    if not sep:
        namespace, name = DEFAULT_NAMESPACE, rest
    if not name or "/" in name or ":" in name:
        return EMPTY
    return EntityRef(kind.lower(), (namespace or DEFAULT_NAMESPACE).lower(), name)


def from_route_params(attributes: dict[str, object]) -> EntityRef:
    """Entity pages' navigate events carry ``kind``/``namespace``/``name`` route params."""
    kind, name = attributes.get("kind"), attributes.get("name")
    if not isinstance(kind, str) or not isinstance(name, str) or not kind or not name:
        return EMPTY
    namespace = attributes.get("namespace")
    namespace = namespace if isinstance(namespace, str) and namespace else DEFAULT_NAMESPACE
    return EntityRef(kind.lower(), namespace.lower(), name)
