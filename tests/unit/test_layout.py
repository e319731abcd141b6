"""The code's shape, as DESIGN.md states it: no function or class over 80 lines, and private
attributes of other libraries' objects reached only from the adapter modules that say why."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "streams", "sinks", "deploy")
MAX_LINES = 80
# Where another library's private attributes may be used (each use commented with its reason):
# faust's and aiokafka's, and librdkafka's underscore-named error codes of confluent-kafka.
ADAPTERS = {
    "streams/worker/faust_adapter.py",
    "streams/kafka/topics.py",
    "sinks/worker/consumer.py",
}
PUBLIC_UNDERSCORED = {"_replace", "_asdict", "_fields", "_make", "_exit"}  # namedtuple's, os


def modules() -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(ROOT)), ast.parse(path.read_text()))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def test_no_function_or_class_is_longer_than_80_lines():
    long = [
        f"{name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert long == []


def _foreign_private(node: ast.AST) -> bool:
    if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
        return False
    if node.attr.startswith("__") or node.attr in PUBLIC_UNDERSCORED:
        return False
    owner = node.value
    if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
        return False
    return not (isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super")


def test_private_attributes_of_other_objects_only_in_the_adapters():
    found = [
        f"{name}:{node.lineno} {ast.unparse(node)}"
        for name, tree in modules()
        if name not in ADAPTERS
        for node in ast.walk(tree)
        if _foreign_private(node)
    ]
    assert found == []
