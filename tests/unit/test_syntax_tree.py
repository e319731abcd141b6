"""The tree of EXPLAIN AST rows: depths and declared children must agree, names stay whole."""

from __future__ import annotations

import pytest

from sinks.query.syntax_tree import SyntaxTreeError, parse

ROWS = [
    "SelectWithUnionQuery (children 2)",
    " ExpressionList (children 1)",
    "  SelectQuery (children 2)",
    "   ExpressionList (children 1)",
    "    Literal UInt64_1 (alias a\nFunction file b)",
    "   TablesInSelectQuery (children 1)",
    "    TablesInSelectQueryElement (children 1)",
    "     TableExpression (children 1)",
    "      TableIdentifier pulse.events (alias e)",
    " Identifier Native",
]


def test_rows_become_nodes_with_their_names_and_parents():
    root = parse(ROWS)
    kinds = [
        (node.kind, node.text, parent.kind if parent else None) for node, parent in root.walk()
    ]
    assert ("TableIdentifier", "pulse.events", "TableExpression") in kinds
    assert ("Identifier", "Native", "SelectWithUnionQuery") in kinds
    # A newline inside an alias stays in its row: no Function node appears.
    assert ("Literal", "UInt64_1", "ExpressionList") in kinds
    assert not [k for k in kinds if k[0] == "Function"]


@pytest.mark.parametrize(
    "rows",
    [
        [],
        ["SelectQuery (children 2)", " ExpressionList"],  # a child missing
        ["SelectQuery (children 1)", " ExpressionList", " ExpressionList"],  # one too many
        ["SelectQuery (children 1)", "  ExpressionList"],  # wrong depth
        ["SelectQuery (children 1)", " "],  # an empty node
    ],
)
def test_rows_that_do_not_form_their_tree_are_an_error(rows):
    with pytest.raises(SyntaxTreeError):
        parse(rows)
