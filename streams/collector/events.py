"""``POST /v1/events``: authorised, bounded, converted, produced, answered once durable.

Events the contract cannot hold are listed in the response with a reason, never dropped
silently; the 202 is sent only once Kafka confirmed delivery of every envelope."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from schemas import ANALYTICS_EVENT_BATCH, Encoder, default_catalog
from schemas.identity import Pseudonymizer
from streams.collector.exclusions import Exclusions
from streams.collector.intake import IntakeError, convert
from streams.collector.outbox import KafkaOutbox
from streams.collector.rate_limit import RateLimiter
from streams.collector.replies import CollectorMetrics, error
from streams.settings import CollectorSettings, Sender

log = logging.getLogger("pulse.collector")
Sessions = dict[str, list[dict[str, Any]]]  # session id -> its converted events


class EventsEndpoint:
    def __init__(self, settings: CollectorSettings, outbox: KafkaOutbox,
                 metrics: CollectorMetrics, exclusions: Exclusions) -> None:  # fmt: skip
        self._tokens, self.origins = settings.tokens(), set(settings.origins)
        self._max_bytes, self._max_events = settings.max_request_bytes, settings.max_batch_events
        self._limiter = RateLimiter(settings.rate_limit_events_per_s, settings.rate_limit_burst)
        self._keyer = Pseudonymizer(settings.user_id_secret.get_secret_value().encode())
        self._excluded = exclusions
        self._encode = Encoder(default_catalog().latest(ANALYTICS_EVENT_BATCH))
        self._outbox, self._metrics = outbox, metrics

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.origins:
            return error(403, "origin_not_allowed", f"origin {origin[:200]!r} is not allowed")
        auth = request.headers.get("Authorization", "")
        sender = self._tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if sender is None:
            return error(401, "unauthorized", "a valid bearer token is required")
        body = await read_body(request, self._max_bytes)
        if isinstance(body, web.Response):
            return body
        batch = body["events"]
        if len(batch) > self._max_events:
            return error(413, "too_many_events", f"{len(batch)} events, at most {self._max_events}")
        if not batch:
            return web.json_response({"accepted": 0, "rejected": []}, status=202)
        wait = self._limiter.take(sender.instance, len(batch))
        if wait > 0:
            self._metrics.rejected.labels("rate_limited").inc(len(batch))
            return error(
                429, "rate_limited", f"instance {sender.instance} is over its rate",
                retry_after=min(wait, 60.0),
            )  # fmt: skip
        good, rejected = convert_batch(
            batch, sender, body, self._keyer, self._metrics, self._excluded
        )
        if not good and any(r["reason"] != "excluded" for r in rejected):
            return error(400, "invalid_events", "no event could be accepted", rejected=rejected)
        if not good:  # every one an excluded user's: nothing wrong with the request
            return web.json_response({"accepted": 0, "rejected": rejected}, status=202)
        failure = await self._produce(good)
        if failure is not None:
            self._metrics.rejected.labels("kafka_unavailable").inc(len(batch) - len(rejected))
            return failure
        accepted = sum(len(r) for r in good.values())
        self._metrics.accepted.inc(accepted)
        return web.json_response({"accepted": accepted, "rejected": rejected}, status=202)

    async def _produce(self, good: Sessions) -> web.Response | None:
        """One envelope per session, produced and confirmed; or the 503 to answer."""
        started = time.perf_counter()
        try:
            futures = [
                self._outbox.send(
                    session.encode(), self._encode({"events": records}), records[0]["event_time"]
                )
                for session, records in good.items()
            ]
        except BufferError:
            return error(503, "unavailable", "the producer queue is full", retry_after=5)
        try:  # librdkafka answers within the delivery timeout; this bounds the wait if not
            results = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), self._outbox.stuck_after_s
            )
        except TimeoutError:
            log.error("Kafka reported no delivery within %.0f s", self._outbox.stuck_after_s)
            return error(503, "unavailable", "Kafka did not confirm in time", retry_after=5)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            # Some envelopes may have landed: the client retries the whole request and the
            # streams stage drops the repeats by event id.
            log.warning("delivery failed: %s", failed[0])
            return error(503, "unavailable", f"Kafka did not confirm: {failed[0]}", retry_after=5)
        self._metrics.produce.observe(time.perf_counter() - started)
        return None


async def read_body(request: web.Request, max_bytes: int) -> dict[str, Any] | web.Response:
    """The JSON body, read within its size bound, or the error to answer."""
    too_large = error(413, "request_too_large", f"at most {max_bytes} bytes")
    if (request.content_length or 0) > max_bytes:
        return too_large
    chunks, size = [], 0
    try:
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > max_bytes:  # no or a false Content-Length
                return too_large
            chunks.append(chunk)
    except (OSError, asyncio.IncompleteReadError) as exc:
        return error(400, "invalid_body", f"could not read the body: {exc}")
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, "invalid_json", f"the body is not JSON: {exc}")
    except RecursionError:  # arrays or objects nested past the parser's depth
        return error(400, "invalid_json", "the body is nested too deeply")
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        return error(400, "invalid_body", 'the body must be {"events": [...]}')
    return body


def convert_batch(
    batch: list[Any],
    sender: Sender,
    body: dict[str, Any],
    keyer: Pseudonymizer,
    metrics: CollectorMetrics,
    excluded: Callable[[str | None], bool],
) -> tuple[Sessions, list[dict[str, Any]]]:
    """Events converted and grouped by session; and the rejected ones (including those of
    excluded users), with reasons."""
    now = int(time.time() * 1000)
    good: Sessions = defaultdict(list)
    rejected = []
    for index, item in enumerate(batch):
        try:
            record = convert(
                item, instance_id=sender.instance, envelope=body, received_at=now,
                key_user=keyer.key, verified=sender.verified,
            )  # fmt: skip
        except IntakeError as exc:
            rejected.append({"index": index, "reason": exc.reason, "detail": exc.detail})
            metrics.rejected.labels(exc.reason).inc()
            continue
        if excluded(record["user_id"]):
            rejected.append({"index": index, "reason": "excluded", "detail": "an excluded user"})
            metrics.rejected.labels("excluded").inc()
            continue
        good[record["session_id"]].append(record)
    return good, rejected
