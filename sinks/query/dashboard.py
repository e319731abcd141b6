"""The analysts' dashboard: one HTML page of charts answering the saved questions.

Charts are Plotly figures built here; the browser draws them with the plotly.js that ships in
the installed ``plotly`` package (served at ``/static/plotly.min.js``), so the page works with
no internet access. Text from the data (search terms, entity refs) reaches the page only
HTML-escaped or inside Plotly's escaped JSON.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import plotly.offline

from sinks.query import privacy, questions

Ask = Callable[[str, dict[str, Any]], list[dict[str, Any]]]
"""Runs a question: (name, render keyword arguments) -> rows."""

RANGES = {"24h": "hour", "7d": "day", "30d": "day", "90d": "week"}
COLORS = ["#2563eb", "#16a34a", "#db2777", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#4b5563"]


@functools.cache
def plotly_js() -> bytes:
    return plotly.offline.get_plotlyjs().encode()


def _num(value: Any) -> float:
    return float(value) if value not in (None, "") else 0.0


def _figure(fig: go.Figure, title: str, periods: bool = False) -> go.Figure:
    if periods:  # hours/days/weeks as labels: evenly spaced, readable with one period or many
        fig.update_xaxes(type="category")
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}},
        margin={"l": 50, "r": 20, "t": 45, "b": 40},
        height=320,
        template="plotly_white",
        colorway=COLORS,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _chart(div_id: str, fig: go.Figure) -> str:
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    return f'<section class="chart" data-chart="{div_id}">{body}</section>'


def _empty(div_id: str, title: str) -> str:
    return (
        f'<section class="chart empty" data-chart="{div_id}"><h2>{html.escape(title)}</h2>'
        "<p>No data in this range.</p></section>"
    )


def _table(title: str, rows: list[dict[str, Any]], columns: list[str], k: int = 5) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_shown(r, c, k))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(columns)}">No data in this range.</td></tr>'
    return (
        f'<section class="table"><h2>{html.escape(title)}</h2><table><thead><tr>{head}</tr>'
        f"</thead><tbody>{body}</tbody></table></section>"
    )


def _shown(row: dict[str, Any], column: str, k: int) -> str:
    value = privacy.cell(row, column, k)
    return "—" if value is None else str(value)


def render(
    ask: Ask, since: str = "24h", now: datetime | None = None, min_group_size: int = 5
) -> str:
    """The whole page for a range (one of ``RANGES``)."""
    if since not in RANGES:
        raise questions.QuestionError(f"range one of {', '.join(RANGES)}, not {since!r}")
    now = now or datetime.now(UTC)
    group_by = RANGES[since]
    start = questions.parse_moment(since, now)
    common = {"since": start, "until": now}

    def q(name: str, **kw: Any) -> list[dict[str, Any]]:
        return ask(name, {**common, **kw})

    active = q("active_users", group_by=group_by)
    [total] = q("active_users", group_by="total") or [{}]
    plugins = q("top_plugins", limit=12)
    trend = q("plugin_trend", group_by=group_by)
    templates = q("top_templates", limit=10)
    searches = q("top_searches", limit=10)
    no_results = q("searches_no_results", limit=10)
    discover = q("search_discover_rate", group_by=group_by)
    dead = q("dead_letters_by_reason")
    teams = q("teams", group_by="total", limit=30)

    tiles = [
        ("Active users", total.get("users", 0)),
        ("Sessions", total.get("sessions", 0)),
        ("Events", total.get("events", 0)),
        ("Page views", total.get("page_views", 0)),
        ("Dead letters", sum(int(r["messages"]) for r in dead)),
    ]
    charts = [
        _section("usage", f"Usage per {group_by}", _usage(active), periods=True),
        _section("plugins", "Top plugins", _plugins(plugins)),
        _section("trend", "Events of the top plugins", _trend(trend, plugins), periods=True),
        _section("templates", "Software templates", _templates(templates)),
        _section("search", "Search", _search(discover), periods=True),
        _section("dead-letters", "Dead letters by reason", _dead_letters(dead)),
        _section("adoption", "Adoption by team: active members / members", _adoption(teams)),
    ]
    tables = [
        _table("Top searches", searches, ["term", "searches", "users", "mean_results"]),
        _table("Searches with no results", no_results, ["term", "searches", "users"]),
        _table(
            f"Teams (figures about fewer than {min_group_size} people are withheld)",
            teams,
            ["title", "type", "members", "active_users", "adoption", "top_plugin"],
            min_group_size,
        ),
    ]
    picker = "".join(
        f'<a href="?since={r}" class="{"on" if r == since else ""}">{r}</a>' for r in RANGES
    )
    tile_html = "".join(
        f'<div class="tile"><span>{html.escape(k)}</span><b>{int(_num(v)):,}</b></div>'
        for k, v in tiles
    )
    generated = html.escape(now.strftime("%Y-%m-%d %H:%M UTC"))
    return PAGE.format(
        picker=picker,
        tiles=tile_html,
        charts="".join(charts),
        tables="".join(tables),
        generated=generated,
        meta=html.escape(json.dumps({"since": since, "group_by": group_by})),
    )


def _section(div_id: str, title: str, fig: go.Figure | None, periods: bool = False) -> str:
    """A chart, or the empty state when its question had no rows."""
    return _empty(div_id, title) if fig is None else _chart(div_id, _figure(fig, title, periods))


Rows = list[dict[str, Any]]


def _usage(active: Rows) -> go.Figure | None:
    if not active:
        return None
    periods = [r["period"] for r in active]
    fig = go.Figure()
    fig.add_bar(x=periods, y=[_num(r["events"]) for r in active], name="events",
                marker_color="#cbd5e1")  # fmt: skip
    fig.add_scatter(x=periods, y=[_num(r["users"]) for r in active], name="users",
                    mode="lines+markers", yaxis="y2")  # fmt: skip
    fig.add_scatter(x=periods, y=[_num(r["sessions"]) for r in active], name="sessions",
                    mode="lines+markers", yaxis="y2")  # fmt: skip
    fig.update_layout(
        yaxis={"title": "events", "rangemode": "tozero"},
        yaxis2={"title": "users, sessions", "overlaying": "y", "side": "right",
                "rangemode": "tozero"},
    )  # fmt: skip
    return fig


def _plugins(plugins: Rows) -> go.Figure | None:
    if not plugins:
        return None
    top = list(reversed(plugins))
    fig = go.Figure()
    fig.add_bar(y=[r["plugin_id"] for r in top], x=[_num(r["page_views"]) for r in top],
                orientation="h", name="page views")  # fmt: skip
    fig.add_bar(y=[r["plugin_id"] for r in top], x=[_num(r["users"]) for r in top],
                orientation="h", name="users")  # fmt: skip
    return fig


def _trend(trend: Rows, plugins: Rows) -> go.Figure | None:
    if not trend:
        return None
    fig = go.Figure()
    for plugin in [r["plugin_id"] for r in plugins[:6]]:
        rows = [r for r in trend if r["plugin_id"] == plugin]
        fig.add_bar(x=[r["period"] for r in rows], y=[_num(r["events"]) for r in rows],
                    name=plugin)  # fmt: skip
    fig.update_layout(barmode="stack")
    return fig


def _templates(templates: Rows) -> go.Figure | None:
    if not templates:
        return None
    fig = go.Figure()
    names = [r["template"] or "(unknown)" for r in templates]
    fig.add_bar(x=names, y=[_num(r["runs"]) for r in templates], name="runs")
    fig.add_scatter(x=names, y=[_num(r["time_saved"]) for r in templates], yaxis="y2",
                    name="time saved (sum of value)", mode="markers",
                    marker={"size": 12, "symbol": "diamond"})  # fmt: skip
    fig.update_layout(
        yaxis={"title": "runs"},
        yaxis2={"title": "time saved", "overlaying": "y", "side": "right"},
    )
    return fig


def _search(discover: Rows) -> go.Figure | None:
    if not discover:
        return None
    fig = go.Figure()
    periods = [r["period"] for r in discover]
    fig.add_bar(x=periods, y=[_num(r["searches"]) for r in discover], name="searches")
    fig.add_bar(x=periods, y=[_num(r["discovers"]) for r in discover], name="result clicks")
    fig.add_scatter(x=periods, y=[_num(r["discover_rate"]) for r in discover],
                    name="click rate", yaxis="y2", mode="lines+markers")  # fmt: skip
    fig.update_layout(
        yaxis2={"overlaying": "y", "side": "right", "tickformat": ".0%", "rangemode": "tozero"}
    )
    return fig


def _adoption(teams: Rows) -> go.Figure | None:
    """Adoption % per group with a population, withheld groups left out."""
    shown = [r for r in teams if r.get("adoption") is not None]
    if not shown:
        return None
    shown.sort(key=lambda r: (_num(r["adoption"]), str(r["group_ref"])))
    fig = go.Figure()
    fig.add_bar(
        y=[f"{r['title'] or r['group_ref']} ({r['type']})" for r in shown],
        x=[_num(r["adoption"]) for r in shown],
        orientation="h",
        name="adoption %",
        customdata=[[r["active_users"], r["members"]] for r in shown],
        hovertemplate="%{x}%: %{customdata[0]} of %{customdata[1]} members<extra></extra>",
    )
    fig.update_layout(xaxis={"title": "% of members active", "range": [0, 100]})
    return fig


def _dead_letters(dead: Rows) -> go.Figure | None:
    if not dead:
        return None
    fig = go.Figure()
    fig.add_bar(x=[f"{r['stage']}: {r['reason']}" for r in dead],
                y=[_num(r["messages"]) for r in dead], name="dead letters",
                marker_color="#dc2626")  # fmt: skip
    return fig


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Pulse: Backstage plugin analytics</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="/static/plotly.min.js"></script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; background: #f8fafc; color: #0f172a; }}
header {{ display: flex; align-items: center; gap: 1.5rem; padding: .8rem 1.5rem;
          background: #0f172a; color: white; }}
header h1 {{ font-size: 1.15rem; margin: 0; }}
nav a {{ color: #cbd5e1; margin-right: .6rem; text-decoration: none; padding: .2rem .5rem;
         border-radius: .3rem; }}
nav a.on {{ background: #2563eb; color: white; }}
.tiles {{ display: flex; gap: 1rem; padding: 1rem 1.5rem; flex-wrap: wrap; }}
.tile {{ background: white; border-radius: .5rem; padding: .7rem 1rem; min-width: 9rem;
         box-shadow: 0 1px 2px #0002; }}
.tile span {{ display: block; font-size: .8rem; color: #475569; }}
.tile b {{ font-size: 1.5rem; }}
main {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1rem;
        padding: 0 1.5rem 1.5rem; }}
section {{ background: white; border-radius: .5rem; padding: .5rem; box-shadow: 0 1px 2px #0002; }}
section h2 {{ font-size: 1rem; margin: .3rem .5rem; }}
table {{ border-collapse: collapse; width: 100%; font-size: .85rem; }}
td, th {{ text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #e2e8f0; }}
footer {{ padding: 0 1.5rem 1rem; font-size: .8rem; color: #64748b; }}
</style></head>
<body data-dashboard="{meta}">
<header><h1>Pulse · Backstage plugin analytics</h1><nav>{picker}</nav></header>
<div class="tiles">{tiles}</div>
<main>{charts}{tables}</main>
<footer>Generated {generated} from the rollups and events in ClickHouse.</footer>
</body></html>
"""
