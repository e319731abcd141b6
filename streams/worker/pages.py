"""The worker's web pages: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from aiohttp.web import Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from streams.metrics import StreamsMetrics


def add_pages(app: faust.App, metrics: StreamsMetrics, running: Callable[[], bool]) -> None:
    """``running``: whether the agent's stream runs."""

    @app.page("/healthz")
    async def liveness(web: Any, request: Any) -> Response:
        return Response(text="ok\n")  # the event loop answers: the process is alive

    @app.page("/readyz")
    async def readiness(web: Any, request: Any) -> Response:
        # Ready once state is recovered and the streams run; not while a rebalance is under way.
        recovered = app.tables.recovery.completed.is_set()
        ready = recovered and not app.rebalancing and running()
        return Response(text="ready\n" if ready else "not ready\n", status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Response:
        return Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
