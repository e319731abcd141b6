"""``python -m streams collect``: the HTTP collector between Backstage frontends and Kafka.

``POST /v1/events`` with ``Authorization: Bearer <token>`` (one token per Backstage instance;
a Backstage backend's token, which marks its users verified, or a browser's) and a JSON body
(see ``intake``). Events are converted, their user refs keyed, grouped per
session into ``AnalyticsEventBatch`` envelopes (key = session id) and produced; the response
(202) is sent only once Kafka confirmed delivery of every envelope, so an accepted event is
durable. Events the contract cannot hold are listed in the response with a reason, never
dropped silently. Errors are JSON ``{"error": <code>, "detail": ...}``: 400 (body), 401 (token),
403 (origin), 413 (size, batch), 429 (rate, with ``Retry-After``), 503 (Kafka unavailable,
with ``Retry-After``). ``/healthz``, ``/readyz`` and ``/metrics`` serve operations.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas import PERSON
from schemas.identity import Pseudonymizer
from streams.catalog.org import GroupRefs
from streams.catalog.table import TopicTable
from streams.collector.events import EventsEndpoint
from streams.collector.exclusions import Exclusions, PeopleLookup
from streams.collector.outbox import KafkaOutbox
from streams.collector.replies import CollectorMetrics, error
from streams.settings import CollectorSettings

log = logging.getLogger("pulse.collector")
VERSION = "pulse-collector/1"


def create_app(
    settings: CollectorSettings, outbox: KafkaOutbox, people: PeopleLookup = lambda _: None
) -> web.Application:
    metrics = CollectorMetrics()
    events = EventsEndpoint(settings, outbox, metrics, exclusions(settings, people))
    origins = events.origins

    def cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            # Browsers hide Retry-After from scripts unless exposed; the module backs off by it.
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
            response.headers["Vary"] = "Origin"
        return response

    @web.middleware
    async def count_status(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.path == "/v1/events":
            metrics.requests.labels(str(response.status)).inc()
        return cors(request, response)

    async def preflight(request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        if origin not in origins:
            return error(403, "origin_not_allowed", f"origin {origin[:200]!r} is not allowed")
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "authorization, content-type",
                "Access-Control-Max-Age": "600",
            },
        )

    async def healthz(request: web.Request) -> web.Response:
        # Not alive when a delivery has gone unreported past twice the delivery timeout: the
        # producer is stuck, and a restart is what helps (requests were answered 503).
        stuck = outbox.oldest_unconfirmed_s()
        if stuck > outbox.stuck_after_s:
            return web.Response(text=f"stuck: a delivery unreported for {stuck:.0f}s\n", status=503)
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        ok = outbox.reachable
        return web.Response(
            text="ready\n" if ok else "kafka unreachable\n", status=200 if ok else 503
        )

    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application(middlewares=[count_status])
    app.router.add_route("OPTIONS", "/v1/events", preflight)
    app.router.add_post("/v1/events", events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    return app


def exclusions(settings: CollectorSettings, people: PeopleLookup) -> Exclusions:
    keyer = Pseudonymizer(settings.user_id_secret.get_secret_value().encode())
    return Exclusions(settings.collector_exclude.split(","), keyer, people)


def serve(settings: CollectorSettings) -> None:
    outbox = KafkaOutbox(settings).start()
    url = f"http://{settings.collector_bind}:{settings.collector_port}/v1/events"
    # Excluded groups are matched through the catalog's people, followed like the workers do.
    people = None
    if exclusions(settings, lambda _: None).groups:
        people = TopicTable(
            settings.kafka_bootstrap, settings.topic_people, PERSON, load=GroupRefs()
        ).start()
    try:
        web.run_app(
            create_app(settings, outbox, people or (lambda _: None)),
            host=settings.collector_bind,
            port=settings.collector_port,
            print=lambda *_: log.info("collecting on %s", url),
            access_log=None,
        )
    finally:
        outbox.close()
        if people is not None:
            people.stop()
