"""Sending to the output topics straight through faust's producer, deliveries checked per flush.

faust's Topic.publish_message wraps each message in futures and sensor calls this worker does
not use (5% of its time); here each delivery future is kept, not awaited, and a flush checks
them all at once. A failed delivery crashes the worker before anything is persisted or
acknowledged: the messages are processed again by whoever owns their partitions next."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import faust

from streams.errors import FlushStalledError
from streams.worker.faust_adapter import partition_count, producer_state

log = logging.getLogger("pulse.streams")
Headers = list[tuple[str, bytes]]


class Output:
    def __init__(self, app: faust.App, raw_topic: Callable[[], str]) -> None:
        """``raw_topic``: the consumed topic's name (its group names the transactions)."""
        self._app = app
        self._raw_topic = raw_topic
        self._deliveries: list[asyncio.Future] = []
        self._partitions: dict[str, int] = {}

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        source_partition: int = 0,
    ) -> None:
        producer = self._app.producer
        await producer.maybe_start()
        partition = None
        if key is None:
            # Keyless messages would go to a random partition; a successor re-sending one must
            # hit the partition of the first copy, where the sink recognises repeats.
            if topic not in self._partitions:
                self._partitions[topic] = await partition_count(self._app, topic)
            partition = source_partition % self._partitions[topic]
        self._deliveries.append(
            await producer.send(
                topic, key, value, partition, None, headers,
                transactional_id=self._transaction_of(source_partition),
            )
        )  # fmt: skip

    def _transaction_of(self, source_partition: int) -> str | None:
        # Under exactly-once an output belongs to the transaction that commits its source
        # partition's offsets. faust's TransactionManager.send picks the transaction of the
        # *output* partition (and fails for a topic it does not consume), so a crash between
        # two transactions' commits kept offsets whose outputs were aborted
        # (test_rebalance_crash_duplicates_and_catalog[join-then-sigkill-exactly-once]).
        if not self._app.in_transaction:
            return None
        group = self._app.assignor.group_for_topic(self._raw_topic())
        return f"{self._app.conf.id}-{group}-{source_partition}"

    async def delivered(self) -> bool:
        """Wait for every message sent so far; False (and the worker crashed) if one failed."""
        await self._app.producer.flush()
        sent = self._deliveries[:]
        self._deliveries.clear()
        return await self.settled(sent)

    async def settled(self, sent: list[asyncio.Future]) -> bool:
        """Wait for these deliveries; False (and the worker crashed) if one failed."""
        results = await asyncio.gather(*sent, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            # Nothing after this point may be persisted or acknowledged.
            log.critical(
                "%d of %d messages were not delivered: %r", len(failed), len(sent), failed[0]
            )
            await self._app.crash(failed[0])
            return False
        return True

    async def stalled(self, deadline_s: float, messages: int, oldest: float | None) -> None:
        """A flush waited past its deadline: say what the producer still owes, and stop the
        worker (exit 1) so that a restart replays from the last commit."""
        age = 0.0 if oldest is None else time.monotonic() - oldest
        try:
            state = producer_state(self._app)
        except Exception as exc:  # the diagnosis must not stand in the way of the stop
            state = f"producer state unavailable: {exc!r}"
        log.critical(
            "flush stalled: not delivered within %.0f s (PULSE_FLUSH_DEADLINE_S), %d messages "
            "unacknowledged, the oldest for %.0f s; stopping for a restart from the last "
            "commit. %s",
            deadline_s, messages, age, state,
        )  # fmt: skip
        await self._app.crash(FlushStalledError(f"flush not delivered within {deadline_s:.0f} s"))
