"""The proof's phases: fractions of the measured capacity by default, absolute rates on request."""

from __future__ import annotations

import pytest

from deploy.proof.__main__ import parse_args, plan


def test_phases_run_at_shares_of_the_capacity():
    args = parse_args(["--events", "1000000"])
    phases = plan(args, capacity=12_000)
    assert [(p.name, p.rate, p.faults) for p in phases] == [
        ("steady-3600/s", 3600, False),
        ("steady-7200/s", 7200, False),
        ("faults-7200/s", 7200, True),
    ]
    # The capacity phase's events count towards the total.
    assert sum(p.events for p in phases) + args.capacity_events == 1_000_000


def test_absolute_rates_need_no_capacity():
    args = parse_args(["--events", "50000", "--rates", "2500", "--fault-rate", "1000"])
    phases = plan(args, capacity=None)
    assert [(p.rate, p.events) for p in phases] == [(2500, 10000), (1000, 40000)]


def test_a_plan_without_events_for_the_faults_is_refused():
    with pytest.raises(SystemExit):
        plan(parse_args(["--events", "100000"]), capacity=5000)  # the capacity phase takes all
    with pytest.raises(SystemExit):
        parse_args(["--rates", "2500"])  # absolute rates need an absolute fault rate
