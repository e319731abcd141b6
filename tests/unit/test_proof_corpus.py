"""The proof's hostile corpus against the pure streams processor: every case meets its declared
fate, and text of any kind (hypothesis) is stored byte for byte."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.proof import corpus
from schemas import ENRICHED_EVENT_BATCH, Decoder, default_catalog
from schemas.dead_letters import HEADER_BATCH_INDEX
from streams.job.processor import Processor
from streams.job.validate import Limits

NOW_MS = int(time.time() * 1000)
LIMITS = Limits(max_message_bytes=corpus.MAX_MESSAGE_BYTES)
ENRICHED = Decoder(default_catalog(), [ENRICHED_EVENT_BATCH])


def processor() -> Processor:
    return Processor(
        secret=b"0123456789abcdef0123456789abcdef",
        limits=LIMITS,
        window_ms=60_000,
        retention_ms=3_600_000,
        dedup_horizon_ms=600_000,
        dedup_max_ids=10_000,
        counts_store={},
        clock=lambda: NOW_MS / 1000,
    )


def run(case: corpus.Case, p: Processor | None = None, offset: int = 0):
    outcome = (p or processor()).process(case.key, case.value, [], "raw", 0, offset)
    stored = ENRICHED.decode(outcome.enriched).record["events"] if outcome.enriched else []
    dead = []
    for letter in outcome.dead_letters:
        index = dict(letter.headers).get(HEADER_BATCH_INDEX)
        dead.append((int(index) if index is not None else None, letter.reason))
    return stored, dead


CASES = corpus.Corpus(NOW_MS, seed=3).cases()


def test_the_corpus_is_large_and_covers_both_fates():
    assert len(CASES) >= 50
    assert sum(1 for c in CASES if c.stored) >= 20
    assert sum(1 for c in CASES if c.dead) >= 40
    reasons = {reason for c in CASES for _, reason in c.dead}
    assert reasons >= {
        "undecodable",
        "unknown_schema",
        "invalid_utf8",
        "oversize_message",
        "too_many_events",
        "missing_field",
        "invalid_event_id",
        "bad_timestamp_future",
        "bad_timestamp_past",
        "oversize_subject",
        "oversize_field",
        "too_many_attributes",
        "oversize_attribute",
        "non_finite_value",
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_case_meets_its_declared_fate(case):
    stored, dead = run(case)
    assert sorted(dead, key=str) == sorted(case.dead, key=str)
    assert [e["event_id"] for e in stored] == [corpus.canonical_id(r) for r in case.stored]
    for got, sent in zip(stored, case.stored, strict=True):
        assert got["subject"] == sent["subject"]
        assert got["action"] == sent["action"]
        assert got["attributes"] == {k: str(v) for k, v in sent["attributes"].items()}
        assert got["value"] == sent["value"]


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=500), st.text(max_size=40))
def test_any_text_is_stored_byte_for_byte(subject, attribute):
    c = corpus.Corpus(NOW_MS, seed=1)
    record = c.event(subject=subject, attributes={"a": attribute})
    stored, dead = run(corpus.Case("x", b"k", c.encode_event(record), stored=(record,)))
    if len(subject.encode()) > corpus.MAX_SUBJECT_BYTES:
        assert dead == [(None, "oversize_subject")]
    elif len(attribute.encode()) > corpus.MAX_VALUE_BYTES:
        assert dead == [(None, "oversize_attribute")]
    else:
        assert dead == []
        assert (stored[0]["subject"], stored[0]["attributes"]) == (subject, {"a": attribute})
