"""The query server's Prometheus metrics: requests, refusals by rule, cancellations, in flight."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class QueryMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "pulse_query_requests_total",
            "HTTP requests to the query server and dashboard",
            ["endpoint", "code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "pulse_query_request_seconds",
            "Time to answer a query or render the dashboard",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.refused = Counter(
            "pulse_query_refused_total",
            "Analyst queries refused, by the rule that refused them",
            ["reason"],
            registry=registry,
        )
        self.cancelled = Counter(
            "pulse_query_cancelled_total",
            "Analyst queries killed because their client disconnected",
            registry=registry,
        )
        self.in_flight = Gauge(
            "pulse_query_in_flight", "Analyst queries running now", registry=registry
        )

    def observe(self, endpoint: str, code: int, started: float) -> None:
        self.requests.labels(endpoint, str(code)).inc()
        self.seconds.labels(endpoint).observe(time.perf_counter() - started)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
