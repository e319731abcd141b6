"""``python -m streams collect-load``: load on a collector from another process; prints the
sustained events/s and request latency percentiles. Bounded by time and by event count."""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid

import urllib3


def run(url: str, token: str, seconds: float, max_events: int, batch: int, clients: int) -> dict:
    http = urllib3.PoolManager(maxsize=clients)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= max_events:
                    return
                sent[0] += batch
            now = int(time.time() * 1000)
            body = {"frontendSystem": "NEW", "events": [
                {"id": str(uuid.uuid4()), "timestamp": now, "sessionId": f"load-{n}-{i % 5}",
                 "user": f"user:default/u{i % 50}", "action": "navigate",
                 "subject": f"/catalog/{i}", "context": {"pluginId": "catalog",
                 "extensionId": "page:catalog"}} for i in range(batch)]}  # fmt: skip
            started = time.perf_counter()
            resp = http.request("POST", url, body=json.dumps(body).encode(), headers=headers,
                                timeout=30, retries=False)  # fmt: skip
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    accepted = statuses.get(202, 0) * batch
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {
        "events_per_s": accepted / wall,
        "requests": len(latencies),
        "statuses": statuses,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "accepted": accepted,
        "seconds": wall,
    }
