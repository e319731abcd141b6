"""What the worker's liveness reports (pure: a fake flush and stall watch)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from streams.metrics import StreamsMetrics
from streams.worker.flush import Unflushed
from streams.worker.liveness import Liveness


def test_unflushed_ages_from_the_oldest_held_message_and_resets_when_taken():
    unflushed = Unflushed()
    assert unflushed.age_s(time.monotonic()) == 0.0 and not unflushed
    unflushed.hold("a")
    held = time.monotonic()
    unflushed.hold("b")  # a later message does not make the oldest younger
    assert unflushed.age_s(held + 5) >= 5 and len(unflushed) == 2
    events, oldest = unflushed.take()
    assert events == ["a", "b"] and oldest is not None and oldest <= held
    assert unflushed.age_s(held + 5) == 0.0 and len(unflushed) == 0


class FakeFlush:
    def __init__(self, running_s: float, oldest_s: float) -> None:
        self.running_s, self.unflushed = running_s, SimpleNamespace(age_s=lambda now: oldest_s)

    def stuck_s(self, now: float) -> float:
        return self.running_s


def liveness(running_s=0.0, oldest_s=0.0, stalled=()) -> tuple[Liveness, StreamsMetrics]:
    metrics = StreamsMetrics()
    stalls = SimpleNamespace(stalled=lambda now, bound: list(stalled))
    return Liveness(FakeFlush(running_s, oldest_s), stalls, 60.0, metrics), metrics


def test_nothing_is_stuck_within_the_bound():
    check, metrics = liveness(running_s=59, oldest_s=59.5)
    assert check.problems() == []
    assert metrics.registry.get_sample_value("pulse_streams_oldest_unflushed_seconds") == 59.5


def test_a_long_flush_an_old_message_and_a_partition_that_does_not_move_are_each_reported():
    check, metrics = liveness(running_s=61, oldest_s=75, stalled=["raw[2] at 17"])
    assert check.problems() == [
        "a flush has waited 61 s",
        "a message has waited 75 s to be flushed",
        "no progress with messages waiting: raw[2] at 17",
    ]
    assert metrics.registry.get_sample_value("pulse_streams_stalled_partitions") == 1
