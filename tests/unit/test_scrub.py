"""A run without an erased person's rows: the same containers, under the same numbers, as
before the erasure; the person's rows dead-lettered by index with the id only."""

from __future__ import annotations

from confluent_kafka import Message

from schemas import ENRICHED_EVENT, ENRICHED_EVENT_BATCH, Decoder, Encoder, default_catalog
from schemas.container import ItemSchemas
from schemas.identity import Pseudonymizer
from sinks.settings import SinkSettings
from sinks.tables import table_specs
from sinks.worker.scrub import Scrub
from sinks.worker.write import assemble
from streams.job.enrich import enrich
from streams.tools.traffic import Traffic, TrafficConfig

CATALOG = default_catalog()
SPEC = table_specs(SinkSettings())["events"]
ITEMS = ItemSchemas(CATALOG, ENRICHED_EVENT, ENRICHED_EVENT_BATCH)
BATCH = Encoder(CATALOG.latest(ENRICHED_EVENT_BATCH))
ONE = Encoder(CATALOG.latest(ENRICHED_EVENT))
OLD_BATCH = Encoder(CATALOG.versions(ENRICHED_EVENT_BATCH)[0])
DECODE = Decoder(CATALOG, [ENRICHED_EVENT, ENRICHED_EVENT_BATCH])


class Letters:
    def __init__(self) -> None:
        self.sent: list[tuple[int, int | None, str]] = []

    def erased(self, msg, batch_index, user_id) -> None:
        self.sent.append((msg.offset(), batch_index, user_id))


def events(n: int, seed: int = 5) -> list[dict]:
    keyer = Pseudonymizer(b"k" * 32)
    raws = Traffic(TrafficConfig(seed=seed, users=3)).take(n)
    return [
        enrich(e, partition=0, offset=i, now_ms=e["event_time"] + 5, pseudonymize=keyer)
        for i, e in enumerate(raws)
    ]


def message(offset: int, value: bytes) -> Message:
    return Message(topic="enriched", partition=0, offset=offset, key=b"s", value=value)


def rows(messages: list[Message]) -> list[dict]:
    out = []
    for msg in messages:
        record = DECODE.decode(msg.value()).record
        out.extend(record.get("events", [record]) if "events" in record else [record])
    return out


def test_a_run_keeps_its_containers_and_loses_only_the_erased_rows():
    evs = events(60)
    victim = next(e["user_id"] for e in evs if e["user_id"])
    alone = next(e for e in evs if e["user_id"] == victim)
    theirs = [e for e in evs if e["user_id"] == victim]
    messages = [
        message(0, BATCH({"events": evs[:30]})),
        message(1, BATCH({"events": theirs})),  # nothing left of it
        message(2, ONE(alone)),  # a lone record of theirs
        message(3, OLD_BATCH({"events": evs[30:]})),  # an older writer's envelope
    ]
    letters = Letters()
    scrubbed = Scrub(SPEC, letters)(messages, frozenset({victim}))

    before, _ = assemble(messages, ITEMS, True)
    after, undecoded = assemble(scrubbed, ITEMS, True)
    assert undecoded == []
    assert [w.item.key for w, _ in after] == [w.item.key for w, _ in before]
    assert [len(m) for _, m in after] == [len(m) for _, m in before]
    others = [e for e in evs if e["user_id"] != victim]
    assert sum(w.records for w, _ in after) == len(others)
    assert rows(scrubbed) == others
    expected = [(0, i, victim) for i, e in enumerate(evs[:30]) if e["user_id"] == victim]
    expected += [(1, i, victim) for i in range(len(theirs))] + [(2, None, victim)]
    expected += [(3, i, victim) for i, e in enumerate(evs[30:]) if e["user_id"] == victim]
    assert letters.sent == expected


def test_nothing_erased_or_the_id_elsewhere_leaves_messages_as_they_are():
    evs = events(10)
    messages = [message(0, BATCH({"events": evs}))]
    scrub = Scrub(SPEC, Letters())
    assert scrub(messages, frozenset()) is messages
    other = "f" * 64
    evs[0]["subject"] = other  # an id in a subject is not a user
    messages = [message(0, BATCH({"events": evs}))]
    assert scrub(messages, frozenset({other})) == messages
