"""The proof's checks: what the producer recorded against what ClickHouse holds, one ``LEDGER``
line each, and the latency figures. Queries go through the sink's SQL endpoint."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from deploy.proof.corpus import canonical_id
from deploy.proof.load import WINDOW_MS, Expected

HOSTILE_INSTANCE = "backstage.hostile.example"


@dataclass
class Line:
    name: str
    expected: int
    actual: int
    details: list[str]

    @property
    def ok(self) -> bool:
        return self.expected == self.actual

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAIL"
        head = f"LEDGER {self.name} expected={self.expected} actual={self.actual} {verdict}"
        return "\n".join([head, *(f"  {d}" for d in self.details[:20])])


class ClickHouse:
    """SQL over the sink's HTTP endpoint (the process that owns chDB), as its admin: the ledger
    reads every stored id, past the analysts' result limits."""

    def __init__(self, url: str, admin_token: str) -> None:
        self.url = url
        self.admin_token = admin_token

    def text(self, sql: str, admin: bool = True, timeout_s: float = 300) -> str:
        headers = {"Authorization": f"Bearer {self.admin_token}"} if admin else {}
        request = urllib.request.Request(self.url + "/", sql.encode(), headers, method="POST")
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return resp.read().decode()

    def rows(self, sql: str) -> list[dict[str, Any]]:
        text = self.text(sql + " FORMAT JSONEachRow")
        return [json.loads(line) for line in text.splitlines() if line]

    def scalar(self, sql: str) -> int:
        return int(self.text(sql).strip() or 0)

    def wait(self, what: str, sql: str, target: int, timeout_s: float, stable_s: float = 30) -> int:
        """Poll ``sql`` until it equals ``target``, or stops changing for ``stable_s``."""
        deadline = time.monotonic() + timeout_s
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            try:
                value = self.scalar(sql)
            except (OSError, urllib.error.HTTPError, ValueError):
                time.sleep(1)  # the sink may be restarting
                continue
            if value == target:
                return value
            if value != last:
                last, since = value, time.monotonic()
            elif time.monotonic() - since > stable_s:
                return value
            time.sleep(1)
        print(f"  (gave up waiting for {what}: {last} of {target})", flush=True)
        return last if last is not None else -1


def stored_ids(db: ClickHouse) -> set[bytes]:
    text = db.text("SELECT toString(event_id) FROM pulse.events")
    return {uuid.UUID(line).bytes for line in text.splitlines()}


def missing_ids(db: ClickHouse, expected: Expected) -> list[str]:
    return [str(uuid.UUID(bytes=b)) for b in expected.ids - stored_ids(db)]


def check(db: ClickHouse, expected: Expected, raw_topic: str, since_ms: int) -> list[Line]:
    lines = []
    n = len(expected.ids)

    # Every good event once, and nothing else.
    stored = stored_ids(db)
    rows = db.scalar("SELECT count() FROM pulse.events FINAL")
    lines.append(Line("events_rows", n, rows, []))
    unmerged = db.scalar("SELECT count() FROM pulse.events")
    # Not only after merges: a message a streams worker forwarded twice is written once.
    lines.append(Line("events_rows_before_merge", n, unmerged, []))
    lines.append(Line("events_distinct", n, len(stored), []))
    missing, extra = expected.ids - stored, stored - expected.ids
    lines.append(
        Line(
            "events_missing", 0, len(missing), [str(uuid.UUID(bytes=b)) for b in list(missing)[:5]]
        )
    )
    lines.append(
        Line("events_unexpected", 0, len(extra), [str(uuid.UUID(bytes=b)) for b in list(extra)[:5]])
    )

    # Each hostile case met its fate.
    lines.extend(_hostile(db, expected, raw_topic))

    # Counts: the streams' windowed counts against the stored rows and against the producer.
    keys = ["w", "instance_id", "plugin_id", "extension", "action"]
    compare = f"""
        WITH e AS (SELECT toStartOfMinute(event_time) AS w, instance_id, plugin_id, extension,
                          action, count() AS n
                   FROM pulse.events FINAL
                   WHERE event_time >= fromUnixTimestamp64Milli({since_ms})
                   GROUP BY {", ".join(keys)}),
             c AS (SELECT window_start AS w, instance_id, plugin_id, extension, action,
                          sum(event_count) AS n
                   FROM pulse.counts_1m FINAL
                   WHERE window_start >= fromUnixTimestamp64Milli({since_ms})
                   GROUP BY {", ".join(keys)})
        SELECT toString(w) AS w, instance_id, plugin_id, extension, action, e.n AS stored,
               c.n AS counted
        FROM e FULL OUTER JOIN c USING ({", ".join(keys)})"""
    joined = db.rows(compare)
    wrong = [r for r in joined if r["stored"] != r["counted"]]
    lines.append(
        Line(
            "counts_1m_keys_equal_events",
            len(joined),
            len(joined) - len(wrong),
            [json.dumps(r, ensure_ascii=False) for r in wrong],
        )
    )
    by_producer = defaultdict(int)
    for r in db.rows(f"""
            SELECT toUnixTimestamp64Milli(window_start) AS w, instance_id, action,
                   sum(event_count) AS n
            FROM pulse.counts_1m FINAL WHERE window_start >= fromUnixTimestamp64Milli({since_ms})
            GROUP BY w, instance_id, action"""):
        by_producer[(int(r["w"]), r["instance_id"], r["action"])] = int(r["n"])
    want = {k: v for k, v in expected.windows.items() if k[0] >= since_ms // WINDOW_MS * WINDOW_MS}
    off = [
        f"{k}: produced {v}, counted {by_producer.get(k, 0)}"
        for k, v in want.items()
        if by_producer.get(k, 0) != v
    ]
    off += [f"{k}: produced 0, counted {v}" for k, v in by_producer.items() if k not in want]
    lines.append(Line("counts_1m_total", sum(want.values()), sum(by_producer.values()), []))
    lines.append(Line("counts_1m_keys_equal_producer", len(want), len(want) - len(off), off))

    # The rollups (materialized views over events) saw every row once.
    daily = db.scalar("SELECT sum(events) FROM pulse.usage_daily")
    lines.append(Line("usage_daily_events", n, daily, []))
    lines.append(
        Line("delivery_errors", 0, len(expected.delivery_errors), expected.delivery_errors[:5])
    )
    return lines


def _hostile(db: ClickHouse, expected: Expected, raw_topic: str) -> list[Line]:
    coords = {(p, o): case for case, p, o in expected.hostile}
    letters: dict[tuple[int, int], list[tuple[int | None, str]]] = defaultdict(list)
    unexplained = []
    copies = 0
    for r in db.rows(f"""
            SELECT source_partition AS p, source_offset AS o, batch_index AS i, reason,
                   count() AS copies
            FROM pulse.dead_letters FINAL WHERE source_topic = '{raw_topic}'
            GROUP BY p, o, i, reason"""):
        key = (int(r["p"]), int(r["o"]))
        copies += int(r["copies"]) - 1
        if key in coords:
            letters[key].append((r["i"], r["reason"]))
        else:
            unexplained.append(json.dumps(r))
    ids = [canonical_id(rec) for case, _, _ in expected.hostile for rec in case.stored]
    found: dict[str, dict[str, Any]] = {}
    if ids:
        for r in db.rows(f"""
                SELECT toString(event_id) AS id, subject, action, session_id, attributes, value,
                       entity_ref, count() OVER (PARTITION BY event_id) AS copies
                FROM pulse.events FINAL
                WHERE event_id IN ({", ".join(f"'{i}'" for i in ids)})"""):
            found[r["id"]] = r
    met, problems = 0, []
    for case, p, o in expected.hostile:
        got_dead = sorted(letters.get((p, o), []), key=str)
        want_dead = sorted(case.dead, key=str)
        issues = [] if got_dead == want_dead else [f"dead letters {got_dead}, want {want_dead}"]
        for rec in case.stored:
            row = found.get(canonical_id(rec))
            if row is None:
                issues.append(f"event {canonical_id(rec)} not stored")
                continue
            sent = {
                "subject": rec["subject"],
                "action": rec["action"],
                "session_id": rec["session_id"],
                "attributes": {k: str(v) for k, v in rec["attributes"].items()},
                "value": rec["value"],
                "entity_ref": rec["context"]["entity_ref"] or "",
                "copies": 1,
            }
            for name, want in sent.items():
                if row[name] != want:
                    issues.append(f"{name}: stored {row[name]!r:.80}, sent {want!r:.80}")
        if issues:
            problems.append(f"{case.name} (partition {p}, offset {o}): {'; '.join(issues)}")
        else:
            met += 1
    want_letters = sum(len(c.dead) for c, _, _ in expected.hostile)
    return [
        Line("hostile_cases_met", len(expected.hostile), met, problems),
        Line("dead_letters_from_hostile", want_letters, sum(len(v) for v in letters.values()), []),
        Line("dead_letters_unexplained", 0, len(unexplained), unexplained),
        Line("dead_letters_repeated", 0, copies, []),
    ]


def latency(db: ClickHouse, start_s: float, end_s: float) -> dict[str, float]:
    """p50/p95/p99/max of produced -> queryable, for events produced in [start_s, end_s)."""
    rows = db.rows(f"""
        SELECT count() AS n,
               quantilesExact(0.5, 0.95, 0.99)(toUnixTimestamp64Milli(inserted_at)
                                               - toUnixTimestamp64Milli(received_at)) AS q,
               max(toUnixTimestamp64Milli(inserted_at) - toUnixTimestamp64Milli(received_at)) AS m
        FROM pulse.events
        WHERE instance_id != '{HOSTILE_INSTANCE}'
          AND received_at >= fromUnixTimestamp64Milli({int(start_s * 1000)})
          AND received_at < fromUnixTimestamp64Milli({int(end_s * 1000)})""")
    r = rows[0]
    q = r["q"] if r["n"] else [0, 0, 0]
    return {"n": int(r["n"]), "p50": q[0], "p95": q[1], "p99": q[2], "max": r["m"]}


def p99_by_second(db: ClickHouse, start_s: float, end_s: float) -> dict[int, float]:
    rows = db.rows(f"""
        SELECT intDiv(toUnixTimestamp64Milli(received_at), 1000) AS s,
               quantileExact(0.99)(toUnixTimestamp64Milli(inserted_at)
                                   - toUnixTimestamp64Milli(received_at)) AS p99
        FROM pulse.events
        WHERE instance_id != '{HOSTILE_INSTANCE}'
          AND received_at >= fromUnixTimestamp64Milli({int(start_s * 1000)})
          AND received_at < fromUnixTimestamp64Milli({int(end_s * 1000)})
        GROUP BY s""")
    return {int(r["s"]): float(r["p99"]) for r in rows}


def stored_seconds(db: ClickHouse, start_s: float, end_s: float) -> list[int]:
    """The seconds (unix) in [start_s, end_s) in which any event was stored."""
    rows = db.rows(f"""
        SELECT DISTINCT intDiv(toUnixTimestamp64Milli(inserted_at), 1000) AS s
        FROM pulse.events
        WHERE inserted_at >= fromUnixTimestamp64Milli({int(start_s * 1000)})
          AND inserted_at < fromUnixTimestamp64Milli({int(end_s * 1000)})""")
    return [int(r["s"]) for r in rows]
