"""The saved questions as a JSON API: ``GET /v1/questions`` lists them, ``GET
/v1/questions/<name>`` answers one with the CLI's parameters, as JSON or (``Accept: text/csv``
or ``?format=csv``) CSV. The questions themselves are defined once, in ``questions``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sinks.query import privacy, questions, rendering
from sinks.query.questions import QuestionError

# name -> (default, what it is); the CLI's `query` options, by the same names.
PARAMETERS: dict[str, tuple[str, str]] = {
    "since": ("7d", "start of the range: 7d, 24h, 90m, 2w (before now), now, or an ISO date"),
    "until": ("now", "end of the range (exclusive), in the same forms"),
    "group_by": ("day", "period of grouped questions: " + ", ".join(questions.GROUPINGS)),
    "instance": ("", "only this Backstage instance"),
    "plugin": ("", "only this plugin id"),
    "frontend_system": ("", "only this frontend system: LEGACY, NEW or UNKNOWN"),
    "group": (
        "",
        "one group's members (a ref such as group:default/web); on rows of groups, "
        "that group and the groups below it",
    ),
    "group_type": ("", "rows of groups of this type only (team, department, ...)"),
    "identity": (
        "",
        "verified: only events whose user Backstage verified (sent through Pulse's backend "
        "plugin); all; unset: verified when the range holds any",
    ),
    "limit": ("20", f"rows of top-N questions, 1 to {questions.MAX_LIMIT}"),
    "format": ("json", "json or csv (or send Accept: text/csv)"),
}
# ClickHouse's JSON output quotes 64-bit integers; the API gives numbers.
_INTEGERS = ("Int64", "UInt64", "Int128", "UInt128", "Int256", "UInt256")

# Runs one rendered question: (sql, parameters, ClickHouse output format) -> the output.
Run = Callable[[str, dict[str, Any], str], bytes]


@dataclass(frozen=True)
class Answer:
    body: bytes
    content_type: str


def catalogue() -> dict[str, Any]:
    return {
        "questions": [
            {
                "name": q.name,
                "title": q.title,
                "grouped": q.grouped,
                "filtered": q.filters,
                "limited": "{limit:" in q.sql,
            }
            for q in questions.QUESTIONS.values()
        ],
        "parameters": {
            name: {"default": d, "description": t} for name, (d, t) in PARAMETERS.items()
        },
    }


def answer(
    name: str, query: dict[str, list[str]], accept: str, database: str, run: Run,
    now: datetime | None = None, min_group_size: int = 5,
) -> Answer:  # fmt: skip
    """Raises QuestionError (a parameter outside its domain, an unknown question)."""
    question = questions.get(name)
    args = _arguments(query)
    now = now or datetime.now(UTC)
    since, until = (questions.parse_moment(args[k], now) for k in ("since", "until"))
    limit = _limit(args["limit"])
    filters = questions.Filters(args["instance"], args["plugin"], args["frontend_system"],
                                args["group"], args["group_type"], args["identity"])  # fmt: skip
    filters = resolve_identity(question, filters, database, since, until, run)
    sql, params = questions.render(
        question, database, since=since, until=until, group_by=args["group_by"],
        filters=filters, limit=limit,
    )  # fmt: skip
    private = privacy.applies(question, filters)
    if _wants_csv(query, accept) and not private:
        return Answer(run(sql, params, "CSVWithNames"), "text/csv; charset=UTF-8")
    columns, rows = published(question, filters, run(sql, params, "JSON"), min_group_size)
    if _wants_csv(query, accept):
        return Answer(rendering.csv_text(columns, rows, min_group_size).encode(),
                      "text/csv; charset=UTF-8")  # fmt: skip
    body = {
        "question": question.name,
        "title": question.title,
        "parameters": {
            "since": since.isoformat(), "until": until.isoformat(), "group_by": args["group_by"],
            "instance": filters.instance, "plugin": filters.plugin,
            "frontend_system": filters.frontend_system, "group": filters.group,
            "group_type": filters.group_type, "identity": filters.identity, "limit": limit,
        },
        "columns": columns,
        "rows": rows,
    }  # fmt: skip
    if private:
        body["min_group_size"] = min_group_size
    return Answer(json.dumps(body).encode(), "application/json")


def resolve_identity(
    question: questions.Question, filters: questions.Filters, database: str,
    since: datetime, until: datetime, run: Run,
) -> questions.Filters:  # fmt: skip
    """``filters`` with an unset identity decided: verified when the range holds any event
    whose user Backstage verified, all otherwise."""
    if filters.identity or not question.filters:
        return filters
    sql, params = questions.verified_check(database, since=since, until=until, filters=filters)
    found = json.loads(run(sql, params, "JSON"))["data"]
    verified = bool(found) and int(found[0]["verified"]) == 1
    return replace(filters, identity="verified" if verified else "all")


def published(
    question: questions.Question, filters: questions.Filters, output: bytes, k: int
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """(columns, rows) of ClickHouse's JSON output as every path publishes them: numbers as
    numbers, and the minimum group size applied where it applies."""
    data = json.loads(output)
    columns = [{"name": c["name"], "type": c["type"]} for c in data["meta"]]
    rows = [_numbers(row, columns) for row in data["data"]]
    if privacy.applies(question, filters):
        rows = privacy.withhold(question, rows, k)
        columns.append({"name": privacy.WITHHELD, "type": "Array(String)"})
    return columns, rows


def _arguments(query: dict[str, list[str]]) -> dict[str, str]:
    unknown = sorted(set(query) - set(PARAMETERS))
    if unknown:
        raise QuestionError(
            f"unknown parameter {unknown[0]!r}; known: {', '.join(PARAMETERS)}",
            "unknown_parameter",
        )
    args = {name: query.get(name, [default])[-1] for name, (default, _) in PARAMETERS.items()}
    if args["frontend_system"] not in questions.FRONTEND_SYSTEMS:
        raise QuestionError("frontend_system is LEGACY, NEW or UNKNOWN")
    if args["identity"] not in questions.IDENTITIES:
        raise QuestionError("identity is verified or all (unset: verified when any is)")
    if args["format"] not in ("json", "csv"):
        raise QuestionError("format is json or csv")
    return args


def _limit(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise QuestionError(f"limit is a number, not {text[:40]!r}") from None


def _wants_csv(query: dict[str, list[str]], accept: str) -> bool:
    """``?format=`` when given, else the Accept header."""
    if "format" in query:
        return query["format"][-1] == "csv"
    return "text/csv" in accept.lower()


def _numbers(row: dict[str, Any], columns: list[dict[str, str]]) -> dict[str, Any]:
    for column in columns:
        value = row.get(column["name"])
        base = column["type"].removeprefix("Nullable(").rstrip(")")
        if isinstance(value, str) and base in _INTEGERS:
            row[column["name"]] = int(value)
    return row


def openapi() -> dict[str, Any]:
    """An OpenAPI 3.1 description of the API (served at ``/v1/openapi.json``)."""
    error = {"$ref": "#/components/schemas/Error"}

    def failure(text: str) -> dict[str, Any]:
        return {"description": text, "content": {"application/json": {"schema": error}}}

    parameters = [
        {"name": name, "in": "query", "required": False, "description": text,
         "schema": {"type": "string", "default": default}}
        for name, (default, text) in PARAMETERS.items()
    ]  # fmt: skip
    answer = {
        "200": {
            "description": "the answer: columns with their ClickHouse types, and rows",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}},
                        "text/csv": {"schema": {"type": "string"}}},
        },
        "400": failure("unknown_question, unknown_parameter or bad_parameter"),
        "401": failure("unauthorized: no or a wrong read token"),
        "413": failure("limit_exceeded: the question read more than the query limits allow"),
        "429": failure("too_many_queries: retry after Retry-After"),
        "503": failure("unavailable: ClickHouse did not answer"),
    }  # fmt: skip
    name = {"name": "name", "in": "path", "required": True,
            "schema": {"type": "string", "enum": sorted(questions.QUESTIONS)}}  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pulse saved questions", "version": "1"},
        "security": [{"bearer": []}, {"basic": []}],
        "paths": {
            "/v1/questions": {"get": {"summary": "The saved questions and their parameters",
                                      "responses": {"200": {"description": "the catalogue"},
                                                    "401": answer["401"]}}},
            "/v1/questions/{name}": {"get": {"summary": "Answer one saved question",
                                             "parameters": [name, *parameters],
                                             "responses": answer}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "basic": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "detail"],
                          "properties": {"error": {"type": "string"},
                                         "detail": {"type": "string"}}},
                "Answer": {"type": "object",
                           "required": ["question", "parameters", "columns", "rows"],
                           "properties": {"question": {"type": "string"},
                                          "title": {"type": "string"},
                                          "parameters": {"type": "object"},
                                          "columns": {"type": "array"},
                                          "rows": {"type": "array",
                                                   "items": {"type": "object"}}}},
            },
        },
    }  # fmt: skip
