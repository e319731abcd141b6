import base64

from schemas.dead_letters import dead_letter_headers
from sinks.dead_letter_rows import COLUMNS, row


def test_a_dead_letter_becomes_a_row_with_its_reason_and_bytes():
    headers = dead_letter_headers(
        [("traceparent", b"00-abc")],
        stage="validate",
        reason="bad_timestamp_future",
        detail="event_time is 10 minutes ahead",
        topic="pulse.events.raw",
        partition=3,
        offset=41,
        batch_index=7,
    )
    r = row(key=b"s1", value=b"\xc3\x01raw", headers=headers, timestamp_ms=5, partition=2, offset=9)
    assert set(r) == set(COLUMNS)
    assert (r["stage"], r["reason"], r["source_topic"]) == (
        "validate", "bad_timestamp_future", "pulse.events.raw"
    )  # fmt: skip
    assert (r["source_partition"], r["source_offset"], r["batch_index"]) == (3, 41, 7)
    assert base64.b64decode(r["payload_base64"]) == b"\xc3\x01raw"
    assert r["payload_bytes"] == 5 and r["message_key"] == "s1"
    assert r["headers"]["traceparent"] == "00-abc"
    assert (r["dlq_partition"], r["dlq_offset"], r["received_at"]) == (2, 9, 5)


def test_a_message_without_the_contract_still_makes_a_row():
    r = row(key=None, value=None, headers=[("pulse.source.offset", b"x")], timestamp_ms=1,
            partition=0, offset=0)  # fmt: skip
    assert r["reason"] == "unknown" and r["source_offset"] == -1 and r["batch_index"] is None
    assert r["payload_base64"] == "" and r["message_key"] == ""
