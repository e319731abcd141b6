"""Cluster-mode DDL cannot run here (no cluster, no Keeper), but ClickHouse's own parser can
read every statement: ``EXPLAIN AST`` fails with SYNTAX_ERROR on anything malformed."""

import pytest

from sinks.schema.migrate import plan


@pytest.mark.parametrize("cluster", [None, "analytics"])
def test_every_rendered_statement_parses(chdb_client, cluster):
    statements = plan("pulse", cluster)
    assert len(statements) > 10
    for statement in statements:
        ast = chdb_client.command(f"EXPLAIN AST {statement}")
        assert "Query" in str(ast), statement
