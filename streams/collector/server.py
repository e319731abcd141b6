"""``python -m streams collect``: the HTTP collector between Backstage frontends and Kafka.

``POST /v1/events`` with ``Authorization: Bearer <token>`` (one token per Backstage instance)
and a JSON body (see ``intake``). Events are converted, their user refs keyed, grouped per
session into ``AnalyticsEventBatch`` envelopes (key = session id) and produced; the response
(202) is sent only once Kafka confirmed delivery of every envelope, so an accepted event is
durable. Events the contract cannot hold are listed in the response with a reason, never
dropped silently. Errors are JSON ``{"error": <code>, "detail": ...}``: 400 (body), 401 (token),
403 (origin), 413 (size, batch), 429 (rate, with ``Retry-After``), 503 (Kafka unavailable,
with ``Retry-After``). ``/healthz``, ``/readyz`` and ``/metrics`` serve operations.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import defaultdict
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaException, Producer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from schemas import ANALYTICS_EVENT_BATCH, Encoder, default_catalog
from streams.collector.intake import IntakeError, convert
from streams.collector.rate_limit import RateLimiter
from streams.job.pseudonymize import Pseudonymizer
from streams.settings import CollectorSettings

log = logging.getLogger("pulse.collector")
VERSION = "pulse-collector/1"


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


def _error(status: int, code: str, detail: str, **extra: Any) -> web.Response:
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, int(extra.pop("retry_after") + 0.999)))
    body = {"error": code, "detail": detail, **extra}
    return web.json_response(body, status=status, headers=headers)


class KafkaOutbox:
    """A confluent-kafka producer whose deliveries resolve asyncio futures."""

    def __init__(self, settings: CollectorSettings) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": int(settings.delivery_timeout_s * 1000),
                "queue.buffering.max.messages": settings.max_buffered_messages,
                "log_level": 3,
            }
        )
        self._topic = settings.topic_raw
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self.reachable = False

    def start(self) -> KafkaOutbox:
        self._thread.start()
        return self

    def _poll(self) -> None:
        checked = 0.0
        while not self._stop.is_set():
            self._producer.poll(0.05)
            if time.monotonic() - checked > 5:
                checked = time.monotonic()
                try:
                    self._producer.list_topics(self._topic, timeout=2)
                    self.reachable = True
                except KafkaException:
                    self.reachable = False

    def send(self, key: bytes, value: bytes, timestamp_ms: int) -> asyncio.Future:
        """Raises BufferError when the local queue is full."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def delivered(err: Any, msg: Any) -> None:
            def settle() -> None:
                if future.done():
                    return
                if err is not None:
                    future.set_exception(KafkaException(err))
                else:
                    future.set_result(None)

            loop.call_soon_threadsafe(settle)

        self._producer.produce(
            self._topic, value, key, timestamp=timestamp_ms, on_delivery=delivered
        )
        return future

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._producer.flush(10)


def create_app(settings: CollectorSettings, outbox: KafkaOutbox) -> web.Application:
    tokens = settings.tokens()
    origins = set(settings.origins)
    limiter = RateLimiter(settings.rate_limit_events_per_s, settings.rate_limit_burst)
    keyer = Pseudonymizer(settings.user_id_secret.get_secret_value().encode())
    encode = Encoder(default_catalog().latest(ANALYTICS_EVENT_BATCH))
    metrics = CollectorMetrics()

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
            return _error(403, "origin_not_allowed", f"origin {origin[:200]!r} is not allowed")
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "authorization, content-type",
                "Access-Control-Max-Age": "600",
            },
        )

    async def events(request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin not in origins:
            return _error(403, "origin_not_allowed", f"origin {origin[:200]!r} is not allowed")
        auth = request.headers.get("Authorization", "")
        instance = tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if instance is None:
            return _error(401, "unauthorized", "a valid bearer token is required")
        if (request.content_length or 0) > settings.max_request_bytes:
            return _error(413, "request_too_large", f"at most {settings.max_request_bytes} bytes")
        chunks, size = [], 0
        try:
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > settings.max_request_bytes:  # no or a false Content-Length
                    return _error(
                        413, "request_too_large", f"at most {settings.max_request_bytes} bytes"
                    )
                chunks.append(chunk)
        except (OSError, asyncio.IncompleteReadError) as exc:
            return _error(400, "invalid_body", f"could not read the body: {exc}")
        raw = b"".join(chunks)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, "invalid_json", f"the body is not JSON: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            return _error(400, "invalid_body", 'the body must be {"events": [...]}')
        batch = body["events"]
        if len(batch) > settings.max_batch_events:
            return _error(
                413, "too_many_events", f"{len(batch)} events, at most {settings.max_batch_events}"
            )
        if not batch:
            return web.json_response({"accepted": 0, "rejected": []}, status=202)
        wait = limiter.take(instance, len(batch))
        if wait > 0:
            metrics.rejected.labels("rate_limited").inc(len(batch))
            return _error(
                429, "rate_limited", f"instance {instance} is over its rate",
                retry_after=min(wait, 60.0),
            )  # fmt: skip
        now = int(time.time() * 1000)
        good: dict[str, list[dict[str, Any]]] = defaultdict(list)
        rejected = []
        for index, item in enumerate(batch):
            try:
                record = convert(
                    item, instance_id=instance, envelope=body, received_at=now, key_user=keyer.key
                )
            except IntakeError as exc:
                rejected.append({"index": index, "reason": exc.reason, "detail": exc.detail})
                metrics.rejected.labels(exc.reason).inc()
                continue
            good[record["session_id"]].append(record)
        if not good:
            return _error(400, "invalid_events", "no event could be accepted", rejected=rejected)
        started = time.perf_counter()
        try:
            futures = [
                outbox.send(session.encode(), encode({"events": records}), records[0]["event_time"])
                for session, records in good.items()
            ]
        except BufferError:
            metrics.rejected.labels("kafka_unavailable").inc(len(batch) - len(rejected))
            return _error(503, "unavailable", "the producer queue is full", retry_after=5)
        results = await asyncio.gather(*futures, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            # Some envelopes may have landed: the client retries the whole request and the
            # streams stage drops the repeats by event id.
            metrics.rejected.labels("kafka_unavailable").inc(len(batch) - len(rejected))
            log.warning("delivery failed: %s", failed[0])
            return _error(503, "unavailable", f"Kafka did not confirm: {failed[0]}", retry_after=5)
        metrics.produce.observe(time.perf_counter() - started)
        accepted = sum(len(r) for r in good.values())
        metrics.accepted.inc(accepted)
        return web.json_response({"accepted": accepted, "rejected": rejected}, status=202)

    async def healthz(request: web.Request) -> web.Response:
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


def serve(settings: CollectorSettings) -> None:
    outbox = KafkaOutbox(settings).start()
    url = f"http://{settings.collector_bind}:{settings.collector_port}/v1/events"
    try:
        web.run_app(
            create_app(settings, outbox),
            host=settings.collector_bind,
            port=settings.collector_port,
            print=lambda *_: log.info("collecting on %s", url),
            access_log=None,
        )
    finally:
        outbox.close()
