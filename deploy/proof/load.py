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
        self.expected = Expected()
        self.hostile_every = hostile_every
        self._hostile = _HostileFeed(self)
        self._envelopes = _Envelopes(self)
        self._times = _EventTimes(self.rng)
        self.where: dict[str, tuple[int, int]] | None = None  # event id -> (partition, offset)

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
        started = last_tick = time.monotonic()
        for sent in range(1, phase.events + 1):
            event = self._times.stamp(next(traffic), int(time.time() * 1000))
            self.expected.add_stored(event)
            self.expected.produced_events += 1
            batch = buffers[event["session_id"]]
            batch.append(dict(event))
            if len(batch) >= ENVELOPE_EVENTS:
                self._envelopes.send(event["session_id"], buffers.pop(event["session_id"]))
            if self._hostile.left and sent % self.hostile_every == 0:
                self._hostile.send()
            now = time.monotonic()
            if now - last_tick >= TICK_S:
                for session, events in buffers.items():
                    self._envelopes.send(session, events)
                buffers.clear()
                last_tick = now
                on_tick()
            ahead = sent / phase.rate - (now - started)
            if ahead > 0.002:
                time.sleep(ahead)
        for session, events in buffers.items():
            self._envelopes.send(session, events)
        self.producer.flush(60)
        run.produced, run.ended = phase.events, time.time()
        return run

    def close(self) -> None:
        self.producer.flush(30)
        self.producer = None  # type: ignore[assignment]  # librdkafka closes it now

    def finish_hostile(self) -> None:
        while self._hostile.left:
            self._hostile.send()
        self.producer.flush(60)


class _EventTimes:
    """Event times of a live run: now, or for 2% minutes behind (as Backstage's deferred
    events are); an event the traffic sends again keeps the time of its first copy."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._first: dict[str, int] = {}

    def stamp(self, event: dict[str, Any], now_ms: int) -> dict[str, Any]:
        first = self._first.get(event["event_id"])
        if first is not None:
            event["event_time"] = first
            return event
        late = self._rng.random() < 0.02
        event["event_time"] = now_ms - (self._rng.randint(60_000, 300_000) if late else 0)
        self._first[event["event_id"]] = event["event_time"]
        if len(self._first) > 2000:  # the traffic repeats only its last 100
            for key in list(islice(self._first, 1000)):
                del self._first[key]
        return event


class _HostileFeed:
    """The hostile corpus, one case at a time, each built when it is produced (its timestamps
    are relative to then)."""

    def __init__(self, load: Load) -> None:
        self._load = load
        self._index = 0
        self._cases = len(Corpus(int(time.time() * 1000), load.seed).cases())

    @property
    def left(self) -> int:
        return self._cases - self._index

    def send(self) -> None:
        load, expected = self._load, self._load.expected
        case = Corpus(int(time.time() * 1000), load.seed).cases()[self._index]
        self._index += 1

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                expected.delivery_errors.append(f"{case.name}: {err}")
            else:
                expected.hostile.append((case, msg.partition(), msg.offset()))

        load.producer.produce(load.topic, case.value, case.key, on_delivery=delivered)
        load.producer.poll(0)
        for record in case.stored:
            normal = dict(record, event_id=canonical_id(record))
            expected.add_stored(normal, counted=case.counted)


class _Envelopes:
    """Per-session envelopes to Kafka, with ``received_at`` = when each is handed over; the
    delivered offsets recorded (and, when ``Load.where`` is set, where each event went)."""

    def __init__(self, load: Load) -> None:
        self._load = load
        self._encode = Encoder(default_catalog().latest(ANALYTICS_EVENT_BATCH))

    def _on_good(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._load.expected.delivery_errors.append(str(err))
        else:
            self._load.expected.good_offsets[msg.partition()].append(msg.offset())

    def send(self, session: str, events: list[dict[str, Any]]) -> None:
        now_ms = int(time.time() * 1000)
        for e in events:
            e["received_at"] = now_ms
        on_delivery = self._on_good
        if self._load.where is not None:  # for a post-mortem: which message held each event
            ids = [e["event_id"] for e in events]

            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                self._on_good(err, msg)
                for i in ids:
                    self._load.where.setdefault(i, (msg.partition(), msg.offset()))

        self._load.producer.produce(
            self._load.topic,
            self._encode({"events": events}),
            session.encode(),
            on_delivery=on_delivery,
            timestamp=events[0]["event_time"],
        )
        self._load.producer.poll(0)
