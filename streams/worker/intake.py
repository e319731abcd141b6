"""Intake of one raw message: processed and its outputs sent in one step under the flush
lock, so a flush never persists an event's id (or count) before the event itself is in the
producer."""

from __future__ import annotations

import time

from faust.types import EventT

from streams.job.processor import Processor
from streams.metrics import StreamsMetrics
from streams.settings import WorkerSettings
from streams.worker.flush import Flush
from streams.worker.output import Output
from streams.worker.recovery import StateReload
from streams.worker.sequence import SequenceGuard


class Intake:
    def __init__(
        self,
        settings: WorkerSettings,
        processor: Processor,
        guard: SequenceGuard,
        reload: StateReload,
        output: Output,
        flush: Flush,
        metrics: StreamsMetrics,
    ) -> None:
        self._topic_enriched, self._topic_dlq = settings.topic_enriched, settings.topic_dlq
        self._max_unflushed = settings.max_unflushed_messages
        self._processor, self._guard, self._reload = processor, guard, reload
        self._output, self._flush, self._metrics = output, flush, metrics
        self._events_out = metrics.events_out.labels(settings.topic_enriched)

    async def __call__(self, event: EventT) -> None:
        msg = event.message
        if not await self._guard.admit(msg):
            return  # faust skipped messages: they are being read again
        async with self._flush.lock:
            if self._reload.needed:
                await self._reload()
            started = time.perf_counter()
            outcome = self._processor.process(
                msg.key, msg.value, list(msg.headers or []), msg.topic, msg.partition, msg.offset
            )
            send = self._output.send
            if outcome.enriched is not None:
                await send(
                    self._topic_enriched,
                    msg.key,
                    outcome.enriched,
                    outcome.enriched_headers,
                    msg.partition,
                )
                self._events_out.inc(outcome.events_out)
            for dead in outcome.dead_letters:
                await send(self._topic_dlq, dead.key, dead.value, dead.headers, msg.partition)
            self._metrics.processing.observe(time.perf_counter() - started)
            self._flush.unflushed.hold(event)
        if len(self._flush.unflushed) >= self._max_unflushed:
            await self._flush()
