"""What the worker's liveness reports, and the partitions that do not move (pure: fakes of
the flush, the stall watch and the faust app)."""

from __future__ import annotations

import time
from collections import namedtuple
from types import SimpleNamespace

from streams.metrics import StreamsMetrics
from streams.worker.flush import Unflushed
from streams.worker.liveness import Liveness
from streams.worker.sequence import SequenceGuard, StallWatch


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


TP = namedtuple("TP", "topic partition")  # as faust's


class FakeApp:
    """What StallWatch reads of faust: owned partitions, their ends, rebalance and recovery."""

    def __init__(self, ends: dict) -> None:
        self.ends, self.rebalancing, self.recovered = ends, False, True
        self.assignor = SimpleNamespace(assigned_actives=lambda: set(self.ends))
        self.consumer = SimpleNamespace(highwater=lambda tp: self.ends[tp], _committed_offset={})
        self.tables = SimpleNamespace(
            recovery=SimpleNamespace(completed=SimpleNamespace(is_set=lambda: self.recovered))
        )


def test_a_partition_with_lag_that_does_not_move_is_stalled_and_one_without_lag_is_not():
    raw0, raw1 = TP("raw", 0), TP("raw", 1)
    app = FakeApp({raw0: 100, raw1: 50})
    guard = SequenceGuard(app, lambda: "raw", StreamsMetrics())
    guard.next_offset = {raw0: 40, raw1: 50}  # raw0 has 60 waiting, raw1 none
    watch = StallWatch(guard)
    watch.observe_lag(1000.0)
    watch.observe_lag(1061.0)  # raw0 did not move
    assert watch.stalled(1061.0, 60) == ["raw[0] at 40"]
    app.rebalancing = True  # nothing can move during a rebalance: its clock restarts
    assert watch.stalled(1061.0, 60) == []
    watch.observe_lag(1070.0)
    app.rebalancing = False
    assert watch.stalled(1100.0, 60) == []
    guard.next_offset[raw0] = 41  # it moves: its clock restarts
    watch.observe_lag(1200.0)
    assert watch.stalled(1250.0, 60) == []
    assert watch.stalled(1261.0, 60) == ["raw[0] at 41"]
