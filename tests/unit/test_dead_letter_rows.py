import base64

from schemas.dead_letters import dead_letter_headers
from sinks.dead_letter_rows import COLUMNS, erased, row


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


def test_a_dead_letter_of_an_erased_person_keeps_where_it_was_and_the_id_only():
    headers = [("pulse.error.stage", b"validate"), ("pulse.error.detail", b"user:default/jane"),
               ("pulse.source.offset", b"7"), ("x-producer", b"app")]  # fmt: skip
    letter = row(key=b"session", value=b"secret payload", headers=headers, timestamp_ms=1,
                 partition=0, offset=3)  # fmt: skip
    kept = erased(letter, "a" * 64)
    assert (kept["reason"], kept["detail"], kept["payload_base64"], kept["message_key"]) == (
        "erased",
        "a" * 64,
        "",
        "",
    )
    assert kept["headers"] == {
        "pulse.error.stage": "validate", "pulse.source.offset": "7",
        "pulse.error.reason": "erased", "pulse.error.detail": "a" * 64,
    }  # fmt: skip
    assert (kept["source_offset"], kept["dlq_offset"]) == (7, 3)


def test_the_dead_letters_sink_strips_a_letter_naming_an_erased_person():
    from confluent_kafka import Message

    from sinks.worker.rows import dead_letter_table_rows

    erased_id, other = "a" * 64, "b" * 64
    headers = [("pulse.error.reason", b"invalid_event_id")]
    messages = [
        Message(topic="dlq", partition=0, offset=1, key=b"s", headers=headers,
                value=b"\x00\x18hmac-sha256:" + erased_id.encode()),
        Message(topic="dlq", partition=0, offset=2, key=b"s", headers=headers,
                value=b"\x00\x18hmac-sha256:" + other.encode()),
    ]  # fmt: skip
    rows = dead_letter_table_rows(messages, frozenset({erased_id})).records
    assert [(r["reason"], r["detail"], r["payload_bytes"]) for r in rows] == [
        ("erased", erased_id, 0), ("invalid_event_id", "", len(messages[1].value())),
    ]  # fmt: skip
    assert dead_letter_table_rows(messages).records[0]["reason"] == "invalid_event_id"
