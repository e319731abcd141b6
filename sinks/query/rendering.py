"""Published answers (rows after the minimum group size) as CSV and as a terminal table, in
ClickHouse's conventions (``CSVWithNames``: a header, strings quoted, numbers bare, NULL as
``\\N``, arrays as ``['a','b']``), with ``<k`` where a cell is withheld."""

from __future__ import annotations

import csv
import io
from typing import Any

from sinks.query import privacy


def _text(value: Any) -> Any:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join("'" + str(v).replace("'", "\\'") + "'" for v in value) + "]"
    return value


def csv_text(
    columns: list[dict[str, str]], rows: list[dict[str, Any]], k: int, delimiter: str = ","
) -> str:
    out = io.StringIO()
    names = [c["name"] for c in columns]
    writer = csv.writer(out, delimiter=delimiter, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_text(privacy.cell(row, name, k)) for name in names])
    return out.getvalue().replace('"\\N"', "\\N")  # NULL stays bare, as ClickHouse writes it


def table_text(columns: list[dict[str, str]], rows: list[dict[str, Any]], k: int) -> str:
    """Columns aligned, numbers to the right; one line per row."""
    names = [c["name"] for c in columns]
    cells = [[str(_text(privacy.cell(row, n, k))) for n in names] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    numeric = [any(t in c["type"] for t in ("Int", "Float", "Decimal")) for c in columns]

    def line(values: list[str]) -> str:
        aligned = zip(values, widths, numeric, strict=True)
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in aligned).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(names), rule, *(line(r) for r in cells)]) + "\n"
