"""ClickHouse's own parse of a query, as a tree: the rows of ``EXPLAIN AST``.

Each row of ``EXPLAIN AST`` is one node: its depth is its indentation, then the node's type and
its text (a function's name, a table's ``db.name``), then ``(alias x)`` and ``(children n)``.
Rows, not lines: a quoted identifier holding a newline stays inside its node's row, so it cannot
forge a node of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

_CHILDREN = re.compile(r" \(children (\d+)\)$")
_ALIAS = re.compile(r" \(alias .*\)$", re.DOTALL)


class SyntaxTreeError(ValueError):
    """The rows do not form the tree they declare (children counts, depths)."""


@dataclass
class Node:
    kind: str
    text: str
    children: list[Node] = field(default_factory=list)

    def walk(self) -> Iterator[tuple[Node, Node | None]]:
        """Every node below and including this one, each with its parent."""
        stack: list[tuple[Node, Node | None]] = [(self, None)]
        while stack:
            node, parent = stack.pop()
            yield node, parent
            stack.extend((child, node) for child in reversed(node.children))


def _row(row: str) -> tuple[int, str, str, int]:
    depth = len(row) - len(row.lstrip(" "))
    body = row[depth:]
    declared = 0
    match = _CHILDREN.search(body)
    if match:
        declared = int(match.group(1))
        body = body[: match.start()]
    body = _ALIAS.sub("", body)
    kind, _, text = body.partition(" ")
    if not kind:
        raise SyntaxTreeError(f"an empty node at depth {depth}")
    return depth, kind, text, declared


def parse(rows: Sequence[str]) -> Node:
    """The tree of ``EXPLAIN AST`` rows; every node must have exactly the children it declares."""
    if not rows:
        raise SyntaxTreeError("no rows")
    parsed = [_row(r) for r in rows]
    position = 0

    def build(depth: int) -> Node:
        nonlocal position
        at, kind, text, declared = parsed[position]
        if at != depth:
            raise SyntaxTreeError(f"node {kind} at depth {at}, expected {depth}")
        position += 1
        node = Node(kind, text)
        for _ in range(declared):
            if position >= len(parsed):
                raise SyntaxTreeError(f"{kind} declares {declared} children, rows ran out")
            node.children.append(build(depth + 1))
        return node

    root = build(0)
    if position != len(parsed):
        raise SyntaxTreeError(f"{len(parsed) - position} rows outside the tree")
    return root
