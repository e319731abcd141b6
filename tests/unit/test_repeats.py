"""Recognising a message a streams worker forwarded twice, by its source headers."""

from __future__ import annotations

from schemas.dead_letters import dead_letter_headers, source_headers
from sinks.worker.repeats import RepeatFilter, identity


def test_identity_reads_the_source_headers_and_the_last_value_wins():
    assert identity(source_headers("raw", 3, 41)) == ("raw", 3, 41, -1)
    assert identity(None) is None
    assert identity([("other", b"x")]) is None
    assert identity([("pulse.source.topic", b"raw"), ("pulse.source.partition", b"x")]) is None
    # A sink dead-lettering a row of an enriched message adds its own coordinates after the
    # raw ones the message carried: the sink's are the dead letter's identity.
    headers = dead_letter_headers(
        source_headers("raw", 3, 41),
        stage="sink:events", reason="r", detail="d",
        topic="enriched", partition=1, offset=9, batch_index=4,
    )  # fmt: skip
    assert identity(headers) == ("enriched", 1, 9, 4)


def test_a_second_copy_is_a_repeat_and_other_partitions_do_not_mix():
    f = RepeatFilter(window=10)
    a, b = ("raw", 0, 1, -1), ("raw", 0, 2, -1)
    assert not f.repeated(0, a)
    assert not f.repeated(0, b)
    assert f.repeated(0, a)
    assert not f.repeated(1, a)  # the same identity on another partition is another message
    assert not f.repeated(0, ("raw", 0, 1, 0))  # another event of the envelope
    assert not f.repeated(0, None) and not f.repeated(0, None)  # no headers: never a repeat


def test_the_window_is_bounded_and_forgetting_a_partition_clears_it():
    f = RepeatFilter(window=3)
    ids = [("raw", 0, n, -1) for n in range(5)]
    for i in ids:
        assert not f.repeated(0, i)
    assert not f.repeated(0, ids[0])  # fell out of the window: taken again
    assert f.repeated(0, ids[4])
    f.forget([0])
    assert not f.repeated(0, ids[4])
    off = RepeatFilter(window=0)
    assert not off.repeated(0, ids[1]) and not off.repeated(0, ids[1])


def test_a_filter_rebuilt_from_the_same_messages_decides_the_same():
    """What a sink re-reading the window before its start offset relies on."""
    stream = [("raw", 0, n % 7, -1) for n in range(20)]
    first, second = RepeatFilter(window=8), RepeatFilter(window=8)
    decisions = [first.repeated(0, i) for i in stream]
    for i in stream[:12]:  # the warm-up: the new owner only remembers these
        second.repeated(0, i)
    assert [second.repeated(0, i) for i in stream[12:]] == decisions[12:]
