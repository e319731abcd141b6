"""The faust port's defences against aiokafka, each against a real broker."""

from __future__ import annotations

import asyncio
import uuid

from streams.kafka.topics import ensure_topics, wait_for_broker
from streams.worker.faust_adapter import WorkerApp, producer_state

from .conftest import PATIENCE


def test_a_topic_new_to_the_producer_strands_no_batch(broker):
    """The worker's producer refreshes its metadata after faust created the changelogs; a
    changelog the answering broker did not list yet is new to it at its first send. Batches
    queued for the other outputs at that moment are delivered, not left without a leader."""
    tag = uuid.uuid4().hex[:8]
    known, new = f"known-{tag}", f"new-{tag}"
    admin = wait_for_broker(broker.bootstrap)
    ensure_topics(admin, [known], 1)

    async def scenario() -> tuple[list, str]:
        app = WorkerApp(
            f"adapter-{tag}",
            broker=f"kafka://{broker.bootstrap}",
            producer_linger=0.05,  # the first batch still waits while the second send runs
            producer_request_timeout=20.0,  # a stranded batch fails, instead of 20 minutes
        )
        app.produced_topics = (known,)
        producer = app.producer
        await producer.start()
        try:
            # As faust does after creating a topic: a refresh that finds `new` not there yet.
            await producer._ensure_producer().client.force_metadata_update()
            await asyncio.to_thread(ensure_topics, admin, [new], 1)
            first = await producer.send(known, b"k", b"queued", None, None, None)
            second = await producer.send(new, b"k", b"first to a new topic", None, None, None)
            owed = producer_state(app)
            await asyncio.wait_for(producer.flush(), 60 * PATIENCE)  # a hang guard
            return [await first, await second], owed
        finally:
            await producer.stop()

    delivered, owed = asyncio.run(scenario())
    assert [(m.topic, m.offset) for m in delivered] == [(known, 0), (new, 0)]
    # What a stalled flush would log: both batches, still queued when it was taken.
    assert f"{known}[0] queued, leader 1 isr [1]" in owed, owed
    assert "not idempotent" in owed and f"tracking ['{known}', '{new}']" in owed, owed
