import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.job.validate import REASONS, Limits, ValidationError, validate
from streams.tools.traffic import Traffic, TrafficConfig

NOW = 1_767_225_600_000
LIMITS = Limits()


def event(**changes):
    e = Traffic(TrafficConfig(start_ms=NOW - 1000)).take(1)[0]
    for path, value in changes.items():
        target = e
        *parents, leaf = path.split("__")
        for p in parents:
            target = target[p]
        target[leaf] = value
    return e


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"event_id": ""}, "missing_field"),
        ({"session_id": ""}, "missing_field"),
        ({"action": ""}, "missing_field"),
        ({"event_id": "not-a-uuid"}, "invalid_event_id"),
        ({"event_time": NOW + 10 * 60_000}, "bad_timestamp_future"),
        ({"event_time": NOW - 8 * 24 * 3_600_000}, "bad_timestamp_past"),
        ({"subject": "x" * 2049}, "oversize_subject"),
        ({"subject": "é" * 1025}, "oversize_subject"),  # 2050 bytes, 1025 characters
        ({"action": "a" * 513}, "oversize_field"),
        ({"action": "€" * 171}, "oversize_field"),  # 513 bytes, 171 characters
        ({"context__plugin_id": "😀" * 129}, "oversize_field"),  # 516 bytes, 129 characters
        ({"source__collector": "é" * 257}, "oversize_field"),
        ({"session_id": "s" * 513}, "oversize_field"),
        ({"user_id": "u" * 513}, "oversize_field"),
        ({"context__route_ref": "r" * 513}, "oversize_field"),
        ({"source__instance_id": "i" * 513}, "oversize_field"),
        ({"attributes": {f"k{i}": i for i in range(65)}}, "too_many_attributes"),
        ({"attributes": {f"k{i}": i for i in range(40)},
          "context__extra": {f"x{i}": i for i in range(25)}}, "too_many_attributes"),
        ({"attributes": {"k" * 129: "v"}}, "oversize_attribute"),
        ({"attributes": {"k": "v" * 1025}}, "oversize_attribute"),
        ({"attributes": {"é" * 65: "v"}}, "oversize_attribute"),
        ({"context__extra": {"k": "€" * 342}}, "oversize_attribute"),
        ({"value": math.nan}, "non_finite_value"),
        ({"value": math.inf}, "non_finite_value"),
        ({"attributes": {"ratio": -math.inf}}, "non_finite_value"),
    ],
)  # fmt: skip
def test_each_violation_has_its_reason(changes, reason):
    assert reason in REASONS
    with pytest.raises(ValidationError) as info:
        validate(event(**changes), NOW, LIMITS)
    assert info.value.reason == reason
    assert info.value.detail


def test_valid_events_pass_and_ids_are_canonicalised():
    for e in Traffic(TrafficConfig(start_ms=NOW - 3_600_000, mean_gap_ms=100)).take(500):
        validate(e, NOW, LIMITS)
    e = event(event_id="0B9D6C1E-3F5A-4F7E-9A51-2C7A7E1D4B10")
    validate(e, NOW, LIMITS)
    assert e["event_id"] == "0b9d6c1e-3f5a-4f7e-9a51-2c7a7e1d4b10"


def test_limits_are_settings():
    e = event(subject="x" * 100)
    validate(e, NOW, LIMITS)
    with pytest.raises(ValidationError):
        validate(e, NOW, Limits(max_subject_bytes=50))
    validate(event(event_time=NOW + 60_000), NOW, LIMITS)  # within the default skew
    with pytest.raises(ValidationError):
        validate(event(event_time=NOW + 60_000), NOW, Limits(max_future_skew_ms=1000))


@given(st.text(max_size=700))
def test_size_limits_count_utf8_bytes_not_characters(text):
    """The character-count shortcut never changes a verdict: only the byte length decides."""
    over = len(text.encode()) > LIMITS.max_field_bytes
    e = event(context__route_ref=text or "r")
    if over:
        with pytest.raises(ValidationError, match="route_ref"):
            validate(e, NOW, LIMITS)
    else:
        validate(e, NOW, LIMITS)
