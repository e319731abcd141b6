"""The whole streams job without a broker: outcomes, ledger, replay, duplicates, lateness."""

from __future__ import annotations

import copy
import math
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import (
    ANALYTICS_EVENT,
    ANALYTICS_EVENT_BATCH,
    ENRICHED_EVENT_BATCH,
    WINDOW_COUNT_BATCH,
    Decoder,
    Encoder,
    default_catalog,
)
from schemas.identity import Pseudonymizer
from streams.job import windows
from streams.job.processor import Processor
from streams.job.validate import Limits
from streams.tools.traffic import Traffic, TrafficConfig

NOW_MS = 1_767_225_600_000
CATALOG = default_catalog()
ENCODE = Encoder(CATALOG.latest(ANALYTICS_EVENT))
ENCODE_BATCH = Encoder(CATALOG.latest(ANALYTICS_EVENT_BATCH))
DECODE_ENRICHED = Decoder(CATALOG, ENRICHED_EVENT_BATCH)


SECRET = b"0123456789abcdef-unit"


def processor(store=None, retention_ms=3_600_000, limits=None, erased=frozenset()) -> Processor:
    return Processor(
        secret=SECRET,
        limits=limits or Limits(),
        window_ms=60_000,
        retention_ms=retention_ms,
        dedup_horizon_ms=600_000,
        dedup_max_ids=100_000,
        counts_store={} if store is None else store,
        erased=erased,
        clock=lambda: NOW_MS / 1000,
    )


def traffic(n, **kw) -> list[dict]:
    kw.setdefault("duplicate_fraction", 0.0)
    config = TrafficConfig(start_ms=NOW_MS - 3_000_000, mean_gap_ms=1000, **kw)
    return Traffic(config).take(n)


def run(proc, messages, partition=0, first_offset=0):
    """Process (key, value) messages; return (enriched events, dead letters)."""
    out, dead = [], []
    for offset, (key, value) in enumerate(messages, start=first_offset):
        outcome = proc.process(key, value, [], "raw", partition, offset)
        if outcome.enriched:
            out.extend(DECODE_ENRICHED(outcome.enriched)["events"])
        dead.extend(outcome.dead_letters)
    return out, dead


def counts_of(proc) -> dict[tuple, int]:
    return {
        windows.WindowKey.decode(k)[:5]: s["count"]
        for states in proc.counter.store.values()
        for k, s in states.items()
    }


def expected_counts(events) -> Counter:
    return Counter(
        (e["event_time"] // 60_000 * 60_000, e["source"]["instance_id"],
         e["context"]["plugin_id"], e["context"]["extension_id"] or e["context"]["extension"],
         e["action"])
        for e in events
    )  # fmt: skip


def test_every_event_is_forwarded_once_and_counted_once():
    events = traffic(1000, late_fraction=0.05, duplicate_fraction=0.03)
    distinct = list({e["event_id"]: e for e in events}.values())
    proc = processor()
    out, dead = run(proc, [(e["session_id"].encode(), ENCODE(e)) for e in events])
    assert dead == []
    assert sorted(e["event_id"] for e in out) == sorted(e["event_id"] for e in distinct)
    assert counts_of(proc) == expected_counts(distinct)
    m = proc.metrics
    assert m.duplicates._value.get() == len(events) - len(distinct)


def test_an_enriched_message_names_the_raw_message_it_was_made_of():
    [event] = traffic(1)
    outcome = processor().process(b"k", ENCODE(event), [("trace", b"1")], "raw", 2, 17)
    assert outcome.enriched_headers == [
        ("pulse.source.topic", b"raw"),
        ("pulse.source.partition", b"2"),
        ("pulse.source.offset", b"17"),
    ]


def test_replay_after_a_crash_changes_nothing():
    events = traffic(600)
    messages = [(e["session_id"].encode(), ENCODE(e)) for e in events]
    store: dict = {}
    first = processor(store)
    run(first, messages)
    flushed = first.flush()
    # A new worker recovers the flushed state (counts and id chunks) and replays from offset 0.
    second = processor(copy.deepcopy(store))
    for p, key, payload in flushed.dedup_chunks:
        second.dedup.load(p, key, payload)
    out, _ = run(second, messages)
    assert out == []  # already forwarded before the crash
    assert counts_of(second) == expected_counts(events)
    assert second.metrics.replayed._value.get() == len(events)
    assert second.metrics.duplicates._value.get() == 0


def test_ids_persisted_without_their_counts_are_still_counted():
    """The flush writes id chunks and window states to two changelogs; if only the chunks
    survive a crash, the replayed events must still be counted (once)."""
    events = traffic(300)
    messages = [(e["session_id"].encode(), ENCODE(e)) for e in events]
    store: dict = {}
    first = processor(store)
    run(first, messages[:100])
    first.flush()
    counts_at_flush = copy.deepcopy(store)
    run(first, messages[100:], first_offset=100)
    chunks = first.flush().dedup_chunks  # these land; the count states of this flush do not
    second = processor(counts_at_flush)
    first_chunks = [c for c in chunks if c[2] is not None]
    for p, key, payload in first_chunks:
        second.dedup.load(p, key, payload)
    out, _ = run(second, messages[100:], first_offset=100)
    assert out == []
    assert counts_of(second) == expected_counts(events)


def test_replay_of_unflushed_events_counts_them_once():
    events = traffic(300)
    messages = [(e["session_id"].encode(), ENCODE(e)) for e in events]
    store: dict = {}
    proc = processor(store)
    run(proc, messages[:200])
    proc.flush()
    changelog = copy.deepcopy(store)  # what the flush persisted
    run(proc, messages[200:], first_offset=200)  # processed, then the worker dies unflushed
    restarted = processor(changelog)
    # Replayed from an older commit: positions skip the first 200 in the counts.
    out, _ = run(restarted, messages)
    assert counts_of(restarted) == expected_counts(events)
    assert len(out) == 300  # no id chunks were restored here, so all are forwarded again


def test_batch_envelopes_forward_good_events_and_dead_letter_bad_ones_alone():
    events = traffic(20)
    session = events[0]["session_id"]
    for e in events:
        e["session_id"] = session
    events[4]["subject"] = "x" * 5000
    events[9]["value"] = math.nan
    proc = processor()
    out, dead = run(proc, [(session.encode(), ENCODE_BATCH({"events": events}))])
    assert len(out) == 18
    assert sorted(d.reason for d in dead) == ["non_finite_value", "oversize_subject"]
    indexes = sorted(dict(d.headers)["pulse.source.batch_index"] for d in dead)
    assert indexes == [b"4", b"9"]
    decoded = Decoder(CATALOG, ANALYTICS_EVENT)(dead[0].value)
    assert decoded["event_id"] in {events[4]["event_id"], events[9]["event_id"]}
    assert sum(counts_of(proc).values()) == 18


def test_two_events_of_one_key_in_one_batch_both_count():
    e1, e2 = traffic(2)
    e2.update(session_id=e1["session_id"], context=e1["context"], action=e1["action"],
              source=e1["source"], event_time=e1["event_time"])  # fmt: skip
    proc = processor()
    run(proc, [(b"k", ENCODE_BATCH({"events": [e1, e2]}))])
    assert list(counts_of(proc).values()) == [2]


def test_events_beyond_the_retention_are_forwarded_but_not_counted():
    events = traffic(50)
    old = dict(events[0], event_id="1c3a2b8e-0000-4000-8000-000000000001")
    old["event_time"] = events[-1]["event_time"] - 2 * 3_600_000
    proc = processor(retention_ms=3_600_000)
    out, _ = run(proc, [(b"k", ENCODE(e)) for e in [*events, old]])
    assert len(out) == 51
    assert sum(counts_of(proc).values()) == 50
    assert proc.metrics.late._value.get() == 1


def test_message_level_reasons_keep_the_original_bytes():
    valid = ENCODE(traffic(1)[0])
    too_many = ENCODE_BATCH({"events": traffic(3)})
    cases = {
        "unknown_schema": b"\x00\x01\x02",
        "undecodable": valid[:-3],
        "invalid_utf8": valid.replace(b"navigate", b"nav\xffgate")
        if b"navigate" in valid
        else valid[:20] + b"\xff" + valid[21:],
        "oversize_message": valid + b"x" * 2000,
        "too_many_events": too_many,
        "missing_field": ENCODE(dict(traffic(1)[0], session_id="")),
    }
    limits = Limits(max_message_bytes=1500, max_batch_events=2)
    proc = processor(limits=limits)
    for reason, value in cases.items():
        outcome = proc.process(b"key", value, [("h", b"1")], "raw", 2, 7)
        assert outcome.enriched is None
        [dead] = outcome.dead_letters
        assert (dead.key, dead.value) == (b"key", value)
        headers = dict(dead.headers)
        assert headers["pulse.error.reason"] == reason.encode(), (reason, headers)
        assert headers["h"] == b"1"
        assert headers["pulse.source.offset"] == b"7"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=400), max_size=20), st.randoms(use_true_random=False))
def test_any_bytes_end_in_exactly_one_place(junk, rnd):
    """Ledger: for every message, events forwarded + dead letters + duplicates = events in."""
    good = traffic(10)
    messages = [ENCODE(e) for e in good] + junk
    # Corrupt a few valid messages too: truncate or flip a byte.
    for i in range(len(good)):
        if rnd.random() < 0.3:
            data = bytearray(messages[i])
            data[rnd.randrange(len(data))] ^= 0xFF
            messages[i] = bytes(data)
    rnd.shuffle(messages)
    proc = processor()
    for offset, value in enumerate(messages):
        outcome = proc.process(b"k", value, None, "raw", 0, offset)
        forwarded = len(DECODE_ENRICHED(outcome.enriched)["events"]) if outcome.enriched else 0
        assert forwarded + len(outcome.dead_letters) <= 1  # single-event messages
        if forwarded + len(outcome.dead_letters) == 0:
            m = proc.metrics
            assert m.duplicates._value.get() + m.replayed._value.get() > 0


def test_seeded_corpus_ledger_adds_up():
    rng = random.Random(3)
    events = traffic(400, duplicate_fraction=0.05)
    messages = []
    for e in events:
        messages.append(ENCODE(e))
        if rng.random() < 0.1:
            messages.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))))
    proc = processor()
    out, dead = run(proc, [(b"k", m) for m in messages])
    duplicates = proc.metrics.duplicates._value.get()
    assert len(out) + len(dead) + duplicates == len(messages)
    assert len(out) == len({e["event_id"] for e in events})


def test_a_flush_writes_buckets_and_one_count_message_per_partition():
    config = TrafficConfig(start_ms=NOW_MS - 200_000, mean_gap_ms=50, duplicate_fraction=0.0,
                           late_fraction=0.0)  # fmt: skip
    events = Traffic(config).take(2000)  # about two minutes: a steady-state flush
    proc = processor()
    for offset, e in enumerate(events):
        proc.process(e["session_id"].encode(), ENCODE(e), [], "raw", offset % 4, offset)
    flush = proc.flush()
    keys = sum(len(states) for _, _, states in flush.count_states)
    assert keys == sum(len(states) for states in proc.counter.store.values()) > 100
    assert len(flush.count_states) <= 3 * 4 * windows.SHARDS < keys  # buckets, not keys
    decode = Decoder(CATALOG, WINDOW_COUNT_BATCH)
    partitions = sorted(int(k) for k, _ in flush.count_records)
    assert partitions == [0, 1, 2, 3]
    emitted = [c for _, v in flush.count_records for c in decode(v)["counts"]]
    assert sum(c["event_count"] for c in emitted) == len(events)
    assert proc.flush().count_records == []  # nothing changed since


DECODE_COUNTS = Decoder(CATALOG, WINDOW_COUNT_BATCH)


def _latest_counts(records, latest: dict) -> None:
    """Keep the highest version of each window key, as ClickHouse's counts_1m does."""
    for _, value in records:
        for c in DECODE_COUNTS(value)["counts"]:
            key = (c["window_start"], c["instance_id"], c["plugin_id"], c["extension"],
                   c["action"], c["source_partition"])  # fmt: skip
            if key not in latest or c["version"] > latest[key]["version"]:
                latest[key] = c


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n=st.integers(20, 300),
    window_ms=st.sampled_from([1_000, 10_000, 60_000]),
    retention_ms=st.sampled_from([0, 5_000, 60_000, 600_000]),
    span_ms=st.sampled_from([30_000, 600_000, 7_200_000]),
)
def test_every_forwarded_event_is_in_one_emitted_count_or_counted_late(
    data, n, window_ms, retention_ms, span_ms
):
    """Whatever the arrival order, window size, retention and flush points: the emitted counts
    (latest version per key) plus the late counter equal the events forwarded."""
    rnd = random.Random(data.draw(st.integers(0, 2**32)))
    events = traffic(n)
    for e in events:
        e["event_time"] = NOW_MS - rnd.randrange(span_ms)
    rnd.shuffle(events)
    flush_after = set(data.draw(st.lists(st.integers(0, n - 1), max_size=12)))
    proc = Processor(
        secret=b"0123456789abcdef-unit", limits=Limits(), window_ms=window_ms,
        retention_ms=retention_ms, dedup_horizon_ms=600_000, dedup_max_ids=100_000,
        counts_store={}, clock=lambda: NOW_MS / 1000,
    )  # fmt: skip
    latest: dict = {}
    forwarded = 0
    for offset, e in enumerate(events):
        outcome = proc.process(e["session_id"].encode(), ENCODE(e), [], "raw", offset % 2, offset)
        forwarded += len(DECODE_ENRICHED(outcome.enriched)["events"]) if outcome.enriched else 0
        if offset in flush_after:
            _latest_counts(proc.flush().count_records, latest)
    _latest_counts(proc.flush().count_records, latest)
    late = proc.metrics.late._value.get()
    assert forwarded == n
    assert sum(c["event_count"] for c in latest.values()) + late == forwarded


def test_an_erased_persons_events_leave_as_dead_letters_naming_only_the_keyed_id():
    events = traffic(80, users=4)
    victim = next(e["user_id"] for e in events if e["user_id"])
    keyed = Pseudonymizer(SECRET)(victim)
    mine = [e for e in events if e["user_id"] == victim]
    bad = copy.deepcopy(mine[0])
    bad["event_id"] = ""  # invalid too: erased first, nothing of it kept
    proc = processor(erased=frozenset({keyed}))
    messages = [(b"s", ENCODE_BATCH({"events": events[:40]}))]
    messages += [(b"s", ENCODE(e)) for e in [*events[40:], bad]]
    out, dead = run(proc, messages)

    assert [e["user_id"] for e in out] == [
        Pseudonymizer(SECRET)(e["user_id"]) for e in events if e["user_id"] != victim
    ]
    assert len(dead) == len(mine) + 1
    for letter in dead:
        headers = dict(letter.headers)
        assert (letter.reason, letter.key, letter.value) == ("erased", None, b"")
        assert headers["pulse.error.detail"] == keyed.encode()
        assert headers["pulse.error.stage"] == b"erasure"
    in_batch = [dict(d.headers).get("pulse.source.batch_index") for d in dead[: len(mine)]]
    assert [i for i in in_batch if i is not None] == [
        str(i).encode() for i, e in enumerate(events[:40]) if e["user_id"] == victim
    ]
    assert sum(counts_of(proc).values()) == len(events) - len(mine)  # not counted either
