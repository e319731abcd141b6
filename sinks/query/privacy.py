"""The minimum group size (pure): no product path publishes a figure about fewer than ``k``
distinct people (``PULSE_MIN_GROUP_SIZE``).

It applies to the questions about groups, and to any question asked about one group. In each
row, a column counting people that holds 1 to k-1 is withheld with every column computed from
those people (the question's ``people``). On rows of groups, a withheld cell must not come
back by subtraction (a department's figure minus its other teams'): when a group in the answer
shows a column in which exactly one of its children is withheld, the smallest other child is
withheld too, or, when it has no other child in the answer, the group itself. Where rows are
bound by sums across periods (the lifecycle), one withheld cell withholds every non-zero
count of the answer: each sum is then of unknowns only. Zero is
published (no one is singled out by it), and so are totals: the answer's figures are exact or
withheld, never perturbed.

Withheld cells become None and each row gets ``withheld``, the names of its withheld columns
(empty when none was); the CSV and table renderings show ``<k`` in their place.
"""

from __future__ import annotations

from typing import Any

from sinks.query.questions import Filters, Question

WITHHELD = "withheld"


def applies(question: Question, filters: Filters) -> bool:
    return bool(question.people) and (question.source == "groups" or bool(filters.group))


def withhold(question: Question, rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The rows as published: see the module's docstring."""
    rules = dict(question.people)
    hidden: list[set[str]] = [set() for _ in rows]
    for row, cells in zip(rows, hidden, strict=True):
        for count, derived in question.people:
            if 0 < _number(row.get(count)) < k:
                cells.update(c for c in derived if c in row)
    if question.about_groups:
        _no_subtraction(rows, hidden, rules)
    if question.linked_rows and any(hidden):
        for row, cells in zip(rows, hidden, strict=True):
            cells.update(c for c in rules if _number(row.get(c)) != 0)
    out = []
    for row, cells in zip(rows, hidden, strict=True):
        published = {c: (None if c in cells else v) for c, v in row.items()}
        published[WITHHELD] = sorted(cells)
        out.append(published)
    return out


def _no_subtraction(
    rows: list[dict[str, Any]], hidden: list[set[str]], rules: dict[str, tuple[str, ...]]
) -> None:
    """Withhold complementary cells until no group has exactly one withheld child in a
    column while its parent or a sibling shows that column."""
    index = {row.get("group_ref"): i for i, row in enumerate(rows)}
    children: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        for parent in row.get("parents") or ():
            if parent in index:
                children.setdefault(index[parent], []).append(i)
    changed = True
    while changed:
        changed = False
        for parent, kids in children.items():
            for count, derived in rules.items():
                if count not in rows[parent] or count in hidden[parent]:
                    continue  # nothing to subtract from (the grandparent sees to the parent)
                shut = [i for i in kids if count in hidden[i]]
                shown = [i for i in kids if count not in hidden[i] and count in rows[i]]
                if len(shut) != 1:
                    continue
                if shown:
                    target = min(shown, key=lambda i: (_number(rows[i].get(count)), i))
                else:
                    target = parent
                hidden[target].update(c for c in derived if c in rows[target])
                changed = True


def _number(value: Any) -> float:
    if value is None or value == "":
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def cell(row: dict[str, Any], column: str, k: int) -> Any:
    """A cell as the CSV and table renderings print it."""
    return f"<{k}" if column in (row.get(WITHHELD) or ()) else row.get(column)
