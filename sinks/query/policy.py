"""What an analyst's query may touch, decided on ClickHouse's own parse of it (``syntax_tree``).

Only Pulse's database, a few harmless ``system`` tables, table functions that compute rows from
their arguments alone, and scalar functions that read nothing outside the query. No SETTINGS
(the limits are Pulse's to set), no ``INTO OUTFILE``, and only reading statements. Each refusal
names a stable rule, so clients and metrics can tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinks.errors import QueryRefusedError
from sinks.query.syntax_tree import Node

# Rows from their arguments alone; a ``view``'s query is checked like the rest.
PURE_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "sqlstandardvalues",
     "generate_series", "generateseries", "primes", "generaterandom", "view"}
)  # fmt: skip
SYSTEM_TABLES = frozenset(
    {"one", "numbers", "numbers_mt", "zeros", "zeros_mt", "functions", "table_functions",
     "data_type_families", "time_zones", "formats", "aggregate_function_combinators",
     "settings"}
)  # fmt: skip
# Scalar functions that read outside the query (files, dictionaries, other tables, models,
# remote AI services) or describe the host or the server's state (settings, users, version);
# with their aliases, from ``system.functions``.
DENIED_CATEGORIES = frozenset(
    {"Dictionary", "Embedded Dictionary", "AI", "Introspection", "Machine Learning"}
)
DENIED_FUNCTIONS = frozenset(
    {"file", "filesystemavailable", "filesystemcapacity", "filesystemunreserved", "joinget",
     "joingetornull", "hascolumnintable", "getmacro", "getserversetting", "getmergetreesetting",
     "getclienthttpheader", "getoskernelversion", "fqdn", "hostname", "serveruuid",
     "showcertificate", "zookeepersessionuptime", "chdb", "getserverport", "tcpport", "buildid",
     "currentrequesturl", "catboostevaluate", "modelevaluate",
     # server state: settings, users and roles, uptime and identity (not version(): clients
     # such as clickhouse-connect ask it on connecting, test_query_server.py)
     "getsetting", "getsettingordefault", "uptime", "revision", "currentuser",
     "currentprofiles", "currentroles", "enabledprofiles", "enabledroles", "defaultprofiles",
     "defaultroles", "displayname", "servertimezone", "globalvariable", "connectionid",
     "shardnum", "shardcount"}
)  # fmt: skip
_IN_FAMILY = frozenset(
    f"{g}{n}{op}{s}"
    for g in ("", "global")
    for n in ("", "not", "null", "notnull")
    for op in ("in",)
    for s in ("", "ignoreset")
)
_SHOW = ("SHOW TABLES", "SHOW CREATE TABLE", "SHOW CREATE VIEW")
_READING_WORDS = frozenset({"SELECT", "WITH", "EXPLAIN", "DESCRIBE", "DESC", "SHOW", "EXISTS"})
_ALLOWED_KINDS = (
    "only SELECT, WITH, EXPLAIN, DESCRIBE, SHOW TABLES, SHOW CREATE TABLE and EXISTS are "
    "allowed here"
)


@dataclass(frozen=True)
class Catalog:
    """What the engine offers, lower-cased: every table function; scalar functions refused."""

    table_functions: frozenset[str]
    denied_functions: frozenset[str]
    scalar_functions: frozenset[str]

    @classmethod
    def from_rows(
        cls, table_functions: list[str], functions: list[tuple[str, str, str]]
    ) -> Catalog:
        """``functions``: (name, alias_to, categories) rows of ``system.functions``."""
        denied = {
            n.lower()
            for n, _, cats in functions
            if n.lower() in DENIED_FUNCTIONS or n.startswith("__") or cats in DENIED_CATEGORIES
        }
        denied |= {n.lower() for n, target, _ in functions if target and target.lower() in denied}
        return cls(
            frozenset(t.lower() for t in table_functions),
            frozenset(denied | DENIED_FUNCTIONS),
            frozenset(n.lower() for n, _, _ in functions),
        )


@dataclass(frozen=True)
class Policy:
    database: str
    catalog: Catalog
    explain_format: str = "Native"  # EXPLAIN AST shows the output format as a last child

    def precheck(self, statement: str) -> None:
        """Refuse by the normalised statement's first word what EXPLAIN AST cannot even show
        (``SYSTEM …``, ``KILL …``); the parse then decides for the rest."""
        first = statement.lstrip("(").split(None, 1)[0].upper() if statement.strip() else ""
        if first not in _READING_WORDS:
            raise _not_reading(_ALLOWED_KINDS + f", not {first or 'an empty query'}")

    def check(self, root: Node, statement: str) -> str:
        """Refuse what the analysts may not run; return the statement's kind (``SELECT``, …)."""
        kind = _kind(self, root, statement)
        for node, parent in root.walk():
            self._check_node(node, parent)
        return kind

    def _check_node(self, node: Node, parent: Node | None) -> None:
        if node.kind == "Set":
            raise QueryRefusedError(
                "forbidden_setting", "SETTINGS are not allowed; Pulse sets limits"
            )
        if node.kind == "TableIdentifier":
            self._table(node.text)
        elif node.kind == "Function":
            self._function(node, parent)

    def _function(self, node: Node, parent: Node | None) -> None:
        name = node.text.lower()
        as_table = parent is not None and parent.kind == "TableExpression"
        only_table = name in self.catalog.table_functions - self.catalog.scalar_functions
        if as_table or only_table:
            if name not in PURE_TABLE_FUNCTIONS:
                raise QueryRefusedError(
                    "forbidden_table_function",
                    f"table function {node.text} is not allowed; allowed: "
                    + ", ".join(sorted(PURE_TABLE_FUNCTIONS)),
                )
            return
        if name in self.catalog.denied_functions:
            raise QueryRefusedError(
                "forbidden_function", f"function {node.text} is not allowed here"
            )
        if name in _IN_FAMILY and node.children:
            args = node.children[0].children
            if len(args) == 2 and args[1].kind == "Identifier" and "." in args[1].text:
                self._table(args[1].text)

    def _table(self, text: str) -> None:
        if "." not in text:
            return  # a table of the current database (Pulse's) or a CTE
        database, _, table = text.partition(".")
        if database.lower() == "system" and table.lower() in SYSTEM_TABLES:
            return
        self.require_database(database, f"table {text}")

    def require_database(self, database: str, what: str) -> None:
        if database != self.database:
            raise QueryRefusedError(
                "forbidden_database", f"{what}: only the {self.database} database can be read"
            )


def _kind(policy: Policy, root: Node, statement: str) -> str:
    """The statement's kind, if it is one of the reading kinds and reads Pulse's database."""
    if root.kind == "SelectWithUnionQuery":
        extra = [c for c in root.children[1:] if c.kind not in ("Identifier", "Set")]
        if extra:
            raise QueryRefusedError("forbidden_clause", "INTO OUTFILE is not allowed here")
        return "SELECT"
    if root.kind == "Explain":
        if not any(c.kind == "SelectWithUnionQuery" for c in root.children):
            raise _not_reading("EXPLAIN is allowed for SELECT queries only")
        return "EXPLAIN"
    if root.kind == "DescribeQuery":
        return "DESCRIBE"
    upper = statement.upper()
    if root.kind == "ShowTables" and upper.startswith("SHOW TABLES"):
        for child in root.children:
            if child.text != policy.explain_format:
                policy.require_database(child.text, f"SHOW TABLES FROM {child.text}")
        return "SHOW"
    if (root.kind == "ShowCreateTableQuery" and upper.startswith(_SHOW)) or (
        root.kind == "ExistsTableQuery"
    ):
        database = root.text.partition(" ")[0]
        if database:
            policy.require_database(database, statement)
        return root.kind
    first = " ".join(statement.split()[:2]) or "an empty query"
    raise _not_reading(_ALLOWED_KINDS + f", not {first}")


def _not_reading(message: str) -> QueryRefusedError:
    return QueryRefusedError("not_reading", message, code=164, name="READONLY")
