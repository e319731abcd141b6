from streams.job import windows


def test_window_start_is_floor_of_event_time():
    assert windows.window_start(125_999, 60_000) == 120_000
    assert windows.window_start(120_000, 60_000) == 120_000


def test_key_round_trips_with_awkward_values():
    key = windows.WindowKey(60_000, 'in"st', "plu,gin", "ext|[x]", "act\n", 2)
    assert windows.WindowKey.decode(key.encode()) == key


def test_apply_counts_and_skips_replays():
    state = windows.apply(None, 10, 2.5)
    assert state == {"count": 1, "sum": 2.5, "offset": 10}
    state = windows.apply(state, 12, None)
    assert state == {"count": 2, "sum": 2.5, "offset": 12}
    assert windows.apply(state, 12, 1.0) is None  # the same offset again: a replay
    assert windows.apply(state, 11, 1.0) is None  # an older offset: a replay


def test_replayed_stream_gives_the_same_counts():
    events = [(offset, float(offset % 3)) for offset in range(100)]
    state = None
    for offset, value in events + events[40:]:  # crash at 40, replay from there
        state = windows.apply(state, offset, value) or state
    assert state["count"] == 100
    assert state["sum"] == sum(v for _, v in events)


def test_record_uses_offset_as_version():
    key = windows.WindowKey(60_000, "i", "p", "e", "a", 1)
    record = windows.to_record(key, {"count": 3, "sum": 1.0, "offset": 99}, 60_000, 5)
    assert record["version"] == 99
    assert record["event_count"] == 3
    assert record["source_partition"] == 1
