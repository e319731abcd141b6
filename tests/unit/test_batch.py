from sinks.batch import Batch


def test_due_by_rows_or_age():
    batch = Batch(("a",), max_rows=2, max_age_s=1.0)
    assert not batch.due(100.0)
    batch.track(0, 5, now=100.0)
    batch.add({"a": 1})
    assert not batch.due(100.5)
    assert batch.due(101.0)
    batch.track(0, 6, now=100.6)
    batch.add({"a": 2})
    assert batch.due(100.6)


def test_offsets_and_token_cover_every_message_seen():
    batch = Batch(("a", "b"), max_rows=10, max_age_s=1.0)
    for partition, offset in [(1, 7), (0, 3), (1, 8), (0, 4), (0, 5)]:
        batch.track(partition, offset, now=0.0)
    batch.add({"a": 1, "b": "x"}, source="m1")
    assert batch.commit_offsets() == {0: 6, 1: 9}
    assert batch.dedup_token("t") == "t/0:3-5,1:7-8"
    assert batch.data == [[1], ["x"]]
    assert batch.sources == ["m1"]


def test_dead_lettered_only_batch_is_not_empty():
    batch = Batch(("a",), max_rows=10, max_age_s=1.0)
    assert batch.empty
    batch.track(0, 1, now=0.0)  # consumed, but it went to the DLQ: no row
    assert not batch.empty and batch.rows == 0


def test_slice_selects_rows():
    batch = Batch(("a", "b"), max_rows=10, max_age_s=1.0)
    for i in range(4):
        batch.add({"a": i, "b": str(i)})
    assert batch.slice(1, 3) == [[1, 2], ["1", "2"]]
