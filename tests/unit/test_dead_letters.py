from schemas.dead_letters import dead_letter_headers


def test_dead_letter_keeps_original_headers_and_adds_coordinates():
    headers = dead_letter_headers(
        [("trace", b"\x00\xff")],
        stage="decode",
        reason="undecodable",
        detail="x" * 5000,
        topic="raw",
        partition=2,
        offset=41,
    )
    assert headers[0] == ("trace", b"\x00\xff")
    as_dict = dict(headers)
    assert as_dict["pulse.error.reason"] == b"undecodable"
    assert as_dict["pulse.source.partition"] == b"2"
    assert as_dict["pulse.source.offset"] == b"41"
    assert len(as_dict["pulse.error.detail"]) == 1000


def test_batch_index_is_added_for_one_event_of_an_envelope():
    headers = dict(
        dead_letter_headers(None, stage="validate", reason="r", detail="d", topic="t",
                            partition=0, offset=1, batch_index=7)
    )  # fmt: skip
    assert headers["pulse.source.batch_index"] == b"7"
