"""The proof's producer: seeded Backstage traffic at a paced rate, in per-session envelopes as
collectors send them, with the hostile corpus spread through it; it records what must come out.

Each envelope's events get ``received_at`` = the moment it is handed to Kafka, so that
``inserted_at - received_at`` in ClickHouse is the end-to-end latency of every stored event.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from deploy.proof.corpus import Case, Corpus, canonical_id
from schemas import ANALYTICS_EVENT_BATCH, Encoder, default_catalog
from streams.tools.traffic import Traffic, TrafficConfig

ENVELOPE_EVENTS = 50
TICK_S = 0.25  # partial envelopes leave at least this often
WINDOW_MS = 60_000


@dataclass(frozen=True)
class Phase:
    name: str
    rate: float
    events: int
    faults: bool = False


@dataclass
class PhaseRun:
    phase: Phase
    started: float = 0.0  # wall clock, seconds
    ended: float = 0.0
    produced: int = 0

    @property
    def achieved_rate(self) -> float:
        return self.produced / max(self.ended - self.started, 1e-9)


@dataclass
class Expected:
    """What the run produced, kept independently of everything downstream."""

    ids: set[bytes] = field(default_factory=set)  # distinct good event ids (UUID bytes)
    windows: Counter = field(default_factory=Counter)  # (window, instance, action) -> events
    produced_events: int = 0  # including the traffic's own duplicates
    hostile: list[tuple[Case, int, int]] = field(default_factory=list)  # case, partition, offset
    good_offsets: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    delivery_errors: list[str] = field(default_factory=list)
    phases: list[PhaseRun] = field(default_factory=list)

    def add_stored(self, record: dict[str, Any], counted: bool = True) -> None:
        event_id = uuid.UUID(record["event_id"]).bytes
        if event_id in self.ids:
            return
        self.ids.add(event_id)
        if counted:
            window = record["event_time"] // WINDOW_MS * WINDOW_MS
            self.windows[(window, record["source"]["instance_id"], record["action"])] += 1


class Load:
    def __init__(self, bootstrap: str, topic: str, seed: int, hostile_every: int) -> None:
        self.topic = topic
        self.seed = seed
        self.rng = random.Random(seed)
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.max.bytes": 2_000_000,
            }
        )
        self.encode = Encoder(default_catalog().latest(ANALYTICS_EVENT_BATCH))
        self.expected = Expected()
        self.hostile_every = hostile_every
        self._case_index = 0
        self._n_cases = len(Corpus(int(time.time() * 1000), seed).cases())
        self._first_time: dict[str, int] = {}
        self.where: dict[str, tuple[int, int]] | None = None  # event id -> (partition, offset)

    # -- delivery --------------------------------------------------------------------------

    def _on_good(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.expected.delivery_errors.append(str(err))
        else:
            self.expected.good_offsets[msg.partition()].append(msg.offset())

    def _send_envelope(self, session: str, events: list[dict[str, Any]]) -> None:
        now_ms = int(time.time() * 1000)
        for e in events:
            e["received_at"] = now_ms
        on_delivery = self._on_good
        if self.where is not None:  # for a post-mortem: which message held each event
            ids = [e["event_id"] for e in events]

            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                self._on_good(err, msg)
                for i in ids:
                    self.where.setdefault(i, (msg.partition(), msg.offset()))

        self.producer.produce(
            self.topic,
            self.encode({"events": events}),
            session.encode(),
            on_delivery=on_delivery,
            timestamp=events[0]["event_time"],
        )
        self.producer.poll(0)

    def _send_hostile(self) -> None:
        # Built now, so that its timestamps are relative to when it is produced.
        case = Corpus(int(time.time() * 1000), self.seed).cases()[self._case_index]
        self._case_index += 1

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self.expected.delivery_errors.append(f"{case.name}: {err}")
            else:
                self.expected.hostile.append((case, msg.partition(), msg.offset()))

        self.producer.produce(self.topic, case.value, case.key, on_delivery=delivered)
        self.producer.poll(0)
        for record in case.stored:
            normal = dict(record, event_id=canonical_id(record))
            self.expected.add_stored(normal, counted=case.counted)

    @property
    def hostile_left(self) -> int:
        return self._n_cases - self._case_index

    # -- traffic ---------------------------------------------------------------------------

    def run_phase(self, phase: Phase, on_tick: Callable[[], None] = lambda: None) -> PhaseRun:
        """Produce ``phase.events`` events at ``phase.rate``; returns when all are delivered."""
        run = PhaseRun(phase, started=time.time())
        self.expected.phases.append(run)
        traffic = Traffic(
            TrafficConfig(
                seed=self.rng.getrandbits(32),
                start_ms=int(run.started * 1000),
                late_fraction=0.0,
                duplicate_fraction=0.005,
            )
        )
        buffers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        started = time.monotonic()
        last_tick = started
        for sent in range(1, phase.events + 1):
            event = next(traffic)
            now_ms = int(time.time() * 1000)
            first = self._first_time.get(event["event_id"])
            if first is None:  # late events: 2% are minutes behind, as Backstage's deferred ones
                late = self.rng.random() < 0.02
                event["event_time"] = now_ms - (self.rng.randint(60_000, 300_000) if late else 0)
                self._first_time[event["event_id"]] = event["event_time"]
                if len(self._first_time) > 2000:  # the traffic repeats only its last 100
                    for key in list(islice(self._first_time, 1000)):
                        del self._first_time[key]
            else:  # the traffic's duplicates are re-sends of an event: same time
                event["event_time"] = first
            self.expected.add_stored(event)
            self.expected.produced_events += 1
            batch = buffers[event["session_id"]]
            batch.append(dict(event))
            if len(batch) >= ENVELOPE_EVENTS:
                self._send_envelope(event["session_id"], buffers.pop(event["session_id"]))
            if self.hostile_left and sent % self.hostile_every == 0:
                self._send_hostile()
            now = time.monotonic()
            if now - last_tick >= TICK_S:
                for session, events in buffers.items():
                    self._send_envelope(session, events)
                buffers.clear()
                last_tick = now
                on_tick()
            ahead = sent / phase.rate - (now - started)
            if ahead > 0.002:
                time.sleep(ahead)
        for session, events in buffers.items():
            self._send_envelope(session, events)
        self.producer.flush(60)
        run.produced = phase.events
        run.ended = time.time()
        return run

    def close(self) -> None:
        self.producer.flush(30)
        self.producer = None  # type: ignore[assignment]  # librdkafka closes it now

    def finish_hostile(self) -> None:
        while self.hostile_left:
            self._send_hostile()
        self.producer.flush(60)
