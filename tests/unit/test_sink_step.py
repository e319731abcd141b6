"""The sink's flush step clock, which its watchdog reads (pure)."""

from __future__ import annotations

import time

from sinks.worker.flush import Step


def test_a_step_is_stalled_only_past_the_bound_and_only_while_it_runs():
    step = Step("events")
    assert step.stalled(time.monotonic() + 1000, 60) is None  # no flush under way
    before = time.monotonic()
    step.at("committing offsets [0] 5-9")
    after = time.monotonic()
    assert step.stalled(before + 60, 60) is None
    assert step.stalled(after + 61, 60).startswith("sink events: committing offsets [0] 5-9 for ")
    step.at("inserting offsets [0] 10-19")  # the next step starts its own clock
    assert step.stalled(time.monotonic() + 59, 60) is None
    step.at(None)
    assert step.stalled(after + 1000, 60) is None
