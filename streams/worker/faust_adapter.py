"""What Pulse changes in faust and aiokafka, and every use of their private attributes.

faust 0.15 leaves several behaviours of its Kafka transport that lose or stall data on Apache
Kafka; each override below names the test that fails without it. The rest of the worker reaches
faust's internals only through the functions at the end of this module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, RequestTimedOutError
from aiokafka.protocol.metadata import MetadataRequest
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def _highwaters(self, partitions: Any) -> Any:
        # Under exactly-once faust takes each changelog's end from the last *fetch* response,
        # which a partition not fetched since its assignment does not have yet: recovery then
        # took -1 as the end, and crashed on its consistency check or, without the check,
        # restored nothing, so counts came up short (test_rebalance_crash_duplicates_and_catalog
        # [join-then-sigkill-exactly-once]). A ListOffsets request with the consumer's
        # read_committed isolation answers the last stable offset itself.
        return await self._ensure_consumer().end_offsets(partitions)


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        # faust forgets the acknowledged offsets of revoked partitions (all of them, under the
        # eager protocol) *before* its revoke handler waits for in-flight messages and commits,
        # so that commit found nothing to commit: what was acknowledged since the last timer
        # commit was processed again by the next owner, and under exactly-once the open
        # transactions were neither committed nor ended (the kept ones carried on, the others
        # were abandoned for the next owner to abort), so a worker killed after a rebalance
        # lost counts (test_rebalance_crash_duplicates_and_catalog
        # [join-then-sigkill-exactly-once]). Same steps as faust's, in the order that commits.
        if self._active_partitions is not None:
            self._active_partitions.difference_update(revoked)
        self._paused_partitions.difference_update(revoked)
        await self._on_partitions_revoked(revoked)
        for tp in revoked:
            for offsets in (self._gap, self._acked, self._acked_index, self._read_offset,
                            self._committed_offset):  # fmt: skip
                offsets.pop(tp, None)


class _Producer(faust_aiokafka.Producer):
    def _new_producer(self, transactional_id: str | None = None) -> Any:
        # aiokafka's client fetches metadata for *all* topics until the first send to a topic
        # its metadata lacks; then it tracks only that topic, and the next refresh forgets
        # every other one. On a cluster the worker's first changelog send meets exactly that
        # (faust refreshes right after creating the topic, before every broker knows it), and
        # batches already queued for the other outputs lost their leader: a flush waited for
        # them until they expired (producer_request_timeout), with nothing sent that would
        # heal it (test_faust_adapter.py::test_a_topic_new_to_the_producer_strands_no_batch).
        # Tracking the worker's outputs from the start keeps the client additive.
        producer = super()._new_producer(transactional_id)
        topics = getattr(self.app, "produced_topics", ())
        if topics:
            producer.client.set_topics(topics)
        return producer


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer

    async def _get_controller_node(self, owner: Any, client: Any, timeout: int = 30000) -> Any:
        # faust sends a metadata request to the first broker it knows of and its CreateTopics
        # to the controller named in the answer; a worker started while a node was down (and
        # not yet fenced) failed either request with NodeNotReadyError and exited
        # (test_broker.py::test_a_worker_starts_while_a_node_of_three_is_down). On KRaft any
        # broker forwards CreateTopics to the active controller, and the "controller" a broker
        # names is a random broker, maybe the dead one: use the first broker that answers.
        failure: Exception = NodeNotReadyError("no broker in the cluster metadata")
        for broker in client.cluster.brokers():
            try:
                answer = await owner.wait(
                    client.send(broker.nodeId, MetadataRequest([])), timeout=timeout / 1000
                )
            except (KafkaConnectionError, NodeNotReadyError, RequestTimedOutError) as exc:
                failure = exc
                continue
            return None if answer.stopped else broker.nodeId
        raise failure


class WorkerApp(faust.App):
    """faust's App on Pulse's transport; ``flush_while_waiting`` runs while faust waits for
    in-flight messages."""

    flush_while_waiting: Callable[[], Awaitable[None]] | None = None
    produced_topics: tuple[str, ...] = ()  # existing topics the producer writes to
    wait_empty_deadline_s: float = 60.0  # how long a revoke or a stop waits for acknowledgements

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        # faust waits here, at a revoke and at shutdown, until every message handed to the
        # agent is acknowledged; only a flush acknowledges, and the flush timer is stopped
        # by then at shutdown, so a SIGTERM waited forever, until SIGKILL (the worker's exit
        # status in test_pipeline.py::test_events_and_counts_match_what_was_produced). Flush
        # while waiting: what the agent still processes is persisted and acknowledged too.
        # faust itself waits without a bound; past the flush deadline the messages still
        # unacknowledged are left to be processed again (by positions and ids, exactly once).
        waiter = asyncio.ensure_future(super()._consumer_wait_empty(consumer, logger))
        give_up = time.monotonic() + self.wait_empty_deadline_s
        while not waiter.done() and time.monotonic() < give_up:
            if self.flush_while_waiting is not None:
                await self.flush_while_waiting()
            await asyncio.wait([waiter], timeout=0.2)
        if not waiter.done():
            logger.error(
                "messages still unacknowledged after %.0f s; going on without them (they are "
                "processed again from the last commit)", self.wait_empty_deadline_s,
            )  # fmt: skip
            waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)


def committed_offset(app: faust.App, tp: Any) -> int | None:
    """Where faust's seek after an assignment put ``tp`` (the offset it last committed), or
    None. faust keeps it only in its consumer's private map; the worker's sequence guard needs
    it as the first expected offset."""
    return app.consumer._committed_offset.get(tp)


def committed_offsets(app: faust.App) -> dict[int, int]:
    """Partition -> committed offset, of every partition faust tracks (for flush traces)."""
    return {tp.partition: o for tp, o in app.consumer._committed_offset.items()}


def is_paused(app: faust.App, tp: Any) -> bool:
    """Whether faust has paused ``tp`` (it does not say so publicly; for a stall's log line)."""
    return tp in app.consumer._paused_partitions


async def partition_count(app: faust.App, topic: str) -> int:
    """Partitions of ``topic``, from the producer's metadata: faust's Producer does not expose
    it, aiokafka's (behind ``_ensure_producer``) does."""
    return len(await app.producer._ensure_producer().partitions_for(topic))


def producer_state(app: faust.App) -> str:
    """What the app's Kafka producers still owe, for the line a stalled flush logs: each
    undelivered batch's topic-partition (queued, or sent and unanswered) with the leader and
    ISR the producer knows, the nodes with requests in flight, the idempotence or transaction
    state, the metadata's age and the topics it tracks. aiokafka exposes none of it."""
    faust_producer = app.producer
    producers = {"main": faust_producer._producer, **faust_producer._transaction_producers}
    return "; ".join(
        f"producer {name}: {_owed(producer)}"
        for name, producer in producers.items()
        if producer is not None
    )


def _owed(producer: Any) -> str:
    batches = producer._message_accumulator
    queued = {batch.tp for tp_batches in batches._batches.values() for batch in tp_batches}
    sent = {batch.tp for batch in batches._pending_batches}
    cluster, client = producer.client.cluster, producer.client
    owed = []
    for tp in sorted(queued | sent):
        meta = cluster._partitions.get(tp.topic, {}).get(tp.partition)
        where = "leader unknown" if meta is None else f"leader {meta.leader} isr {list(meta.isr)}"
        owed.append(f"{tp.topic}[{tp.partition}] {'sent' if tp in sent else 'queued'}, {where}")
    txn = producer._txn_manager
    guarantee = (
        "not idempotent"
        if txn is None
        else f"transactional id {txn.transactional_id} pid {txn.producer_id} "
        f"epoch {txn.producer_epoch} {txn.state.name}"
    )
    age_s = time.time() - cluster._last_successful_refresh_ms / 1000
    return (
        f"undelivered [{'; '.join(owed) or 'none'}], requests in flight to nodes "
        f"{sorted(producer._sender._in_flight)}, {guarantee}, metadata {age_s:.1f}s old "
        f"tracking {sorted(client._topics) or 'all topics'}"
    )
