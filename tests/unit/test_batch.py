import pytest

from sinks.worker.batch import Batch


def test_due_by_rows_or_age():
    batch = Batch(max_rows=100, max_age_s=1.0)
    assert not batch.due(100.0)
    batch.add(0, 5, "m5", rows=50, now=100.0)
    assert not batch.due(100.5)
    assert batch.due(101.0)
    batch.add(1, 9, "m9", rows=50, now=100.6)
    assert batch.due(100.6)


def test_runs_are_per_partition_and_name_their_exact_range():
    batch = Batch(max_rows=1000, max_age_s=1.0)
    for partition, offset in [(1, 7), (0, 3), (1, 8), (0, 4), (0, 6)]:  # 5 skipped: a marker
        batch.add(partition, offset, f"m{partition}.{offset}", rows=2, now=0.0)
    assert len(batch) == 10
    [run1] = batch.take({1})
    assert (run1.first, run1.last, run1.rows) == (7, 8, 4)
    assert run1.messages == ["m1.7", "m1.8"]
    assert run1.token("t") == "t:1:7-8"
    assert len(batch) == 6
    [run0] = batch.take()
    assert run0.token("t") == "t:0:3-6"
    assert batch.empty and len(batch) == 0 and not batch.due(10.0)


def test_offsets_never_go_back_within_a_run():
    batch = Batch(max_rows=10, max_age_s=1.0)
    batch.add(0, 5, "a", rows=1, now=0.0)
    with pytest.raises(ValueError):
        batch.add(0, 5, "again", rows=1, now=0.0)


def test_dropped_partitions_are_forgotten():
    batch = Batch(max_rows=10, max_age_s=1.0)
    batch.add(0, 1, "a", rows=1, now=0.0)
    batch.add(1, 1, "b", rows=1, now=0.0)
    batch.drop({0})
    assert list(batch.runs) == [1] and len(batch) == 1


def test_a_repeat_takes_its_offset_into_the_run_with_nothing_to_write():
    batch = Batch(max_rows=1000, max_age_s=1.0)
    batch.add(0, 3, "m3", rows=2, now=0.0)
    batch.add(0, 4, None, rows=0, now=0.0)
    [run] = batch.take()
    assert (run.first, run.last, run.rows, run.messages, run.repeats) == (3, 4, 2, ["m3"], 1)
