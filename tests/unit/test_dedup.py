from streams.job.dedup import Deduplicator, Seen, decode_chunk, encode_chunk

MIN = 60_000


def test_duplicates_within_the_horizon_are_caught_per_partition():
    d = Deduplicator(horizon_ms=10 * MIN, max_ids=1000)
    assert d.check(0, "a", 0, 1) is Seen.NEW
    assert d.check(0, "a", 5, 2) is Seen.DUPLICATE  # the same event in another message
    assert d.check(0, "a", 0, 1) is Seen.REPLAY  # the same message again
    assert d.check(1, "a", 5, 1) is Seen.NEW  # another partition: another session


def test_ids_beyond_the_horizon_are_forgotten():
    d = Deduplicator(horizon_ms=10 * MIN, max_ids=1000)
    d.check(0, "old", 0, 1)
    d.take_chunks()
    d.check(0, "new", 11 * MIN, 2)
    d.take_chunks()
    gone = d.expire({0: 11 * MIN})
    assert gone == [(0, "0:1")]
    assert d.check(0, "old", 12 * MIN, 3) is Seen.NEW  # beyond the horizon: accepted again
    assert d.check(0, "new", 12 * MIN, 4) is Seen.DUPLICATE


def test_memory_is_bounded_by_max_ids():
    d = Deduplicator(horizon_ms=10**12, max_ids=250)
    for i in range(1000):
        d.check(i % 2, f"id{i}", i, i)
        if i % 50 == 49:
            d.take_chunks()
            d.expire({0: i, 1: i})
    assert d.size <= 250
    assert d.evicted_early > 0


def test_chunks_restore_the_seen_set():
    d = Deduplicator(horizon_ms=10 * MIN, max_ids=1000)
    for i in range(10):
        d.check(3, f"id{i}", i * 1000, i)
    [(partition, key, payload)] = d.take_chunks()
    assert (partition, key) == (3, "3:0")
    restored = Deduplicator(horizon_ms=10 * MIN, max_ids=1000)
    restored.load(partition, key, payload)
    assert restored.check(3, "id7", 0, 7) is Seen.REPLAY
    assert restored.check(3, "id7", 0, 99) is Seen.DUPLICATE
    assert restored.check(3, "id10", 0, 100) is Seen.NEW
    assert decode_chunk(encode_chunk(42, [("x", 1), ("y", 2)])) == (42, [("x", 1), ("y", 2)])


def test_chunks_stay_under_the_message_size_limit():
    from streams.job.dedup import CHUNK_IDS

    d = Deduplicator(horizon_ms=10 * MIN, max_ids=10**6)
    for i in range(CHUNK_IDS * 2 + 5):
        d.check(0, f"00000000-0000-4000-8000-{i:012d}", i, 10_000_000_000 + i)
    chunks = d.take_chunks()
    assert [len(decode_chunk(c)[1]) for _, _, c in chunks] == [CHUNK_IDS, CHUNK_IDS, 5]
    assert max(len(c.encode()) for _, _, c in chunks) < 1_000_000
    assert len({k for _, k, _ in chunks}) == 3
