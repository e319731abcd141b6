"""The collector's metrics and its JSON errors, ``{"error": <code>, "detail": ...}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram


class CollectorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "pulse_collector_requests_total", "Requests by status", ["status"], registry=r
        )
        self.accepted = Counter(
            "pulse_collector_events_accepted_total", "Events durable in Kafka", registry=r
        )
        self.rejected = Counter(
            "pulse_collector_events_rejected_total",
            "Events refused, by reason",
            ["reason"],
            registry=r,
        )
        self.produce = Histogram(
            "pulse_collector_produce_seconds",
            "From a request's first produce to Kafka's last delivery confirmation",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )


def error(status: int, code: str, detail: str, **extra: Any) -> web.Response:
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, int(extra.pop("retry_after") + 0.999)))
    body = {"error": code, "detail": detail, **extra}
    return web.json_response(body, status=status, headers=headers)
