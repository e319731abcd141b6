"""The worker's web pages: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from aiohttp.web import Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from streams.metrics import StreamsMetrics


def add_pages(
    app: faust.App,
    metrics: StreamsMetrics,
    running: Callable[[], bool],
    stuck: Callable[[], list[str]],
) -> None:
    """``running``: whether the agent's stream runs; ``stuck``: what makes no progress (a
    flush past its deadline, messages unacknowledged as long, partitions that do not move)."""

    @app.page("/healthz")
    async def liveness(web: Any, request: Any) -> Response:
        # Alive while the event loop answers and nothing is stuck: a stuck worker is restarted.
        problems = stuck()
        if problems:
            return Response(text="stuck: " + "; ".join(problems) + "\n", status=503)
        return Response(text="ok\n")

    @app.page("/readyz")
    async def readiness(web: Any, request: Any) -> Response:
        # Ready once state is recovered and the streams run; not while a rebalance is under way,
        # nor while something is stuck.
        recovered = app.tables.recovery.completed.is_set()
        ready = recovered and not app.rebalancing and running() and not stuck()
        return Response(text="ready\n" if ready else "not ready\n", status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Response:
        return Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
