"""Object containers built from message bytes must read back as exactly the records sent."""

import datetime
import io
import uuid

import pytest
from fastavro import reader

from schemas import (
    ENRICHED_EVENT,
    ENRICHED_EVENT_BATCH,
    WINDOW_COUNT,
    WINDOW_COUNT_BATCH,
    Encoder,
    default_catalog,
)
from schemas.container import (
    ContainerWriter,
    ItemSchemas,
    NotPassthroughError,
    block_of,
    read_long,
    zigzag,
)
from schemas.identity import Pseudonymizer
from streams.job.enrich import enrich
from streams.tools.traffic import Traffic, TrafficConfig

CATALOG = default_catalog()


def enriched_records(n: int = 40) -> list[dict]:
    pseudonymize = Pseudonymizer(b"k" * 32)
    events = Traffic(TrafficConfig(seed=3)).take(n)
    return [
        enrich(e, partition=1, offset=i, now_ms=e["event_time"] + 5, pseudonymize=pseudonymize)
        for i, e in enumerate(events)
    ]


@pytest.mark.parametrize("n", [0, 1, -1, 63, -64, 64, 300, -301, 2**40, -(2**62)])
def test_zigzag_round_trips(n):
    assert read_long(zigzag(n), 0) == (n, len(zigzag(n)))


def test_truncated_varint_is_refused():
    with pytest.raises(NotPassthroughError):
        read_long(b"\x80\x80", 0)


def read(writer: ContainerWriter) -> list[dict]:
    """The container's records, logical types (as its header declares them) back to wire values."""

    def plain(value):
        if isinstance(value, datetime.datetime):
            return int(value.timestamp() * 1000)
        return str(value) if isinstance(value, uuid.UUID) else value

    return [{k: plain(v) for k, v in r.items()} for r in reader(io.BytesIO(writer.getvalue()))]


def window_count(i: int) -> dict:
    return {
        "window_start": 1_767_225_600_000 + 60_000 * i, "window_size_ms": 60_000,
        "instance_id": "i", "plugin_id": f"p{i % 3}", "extension": "", "action": "click",
        "source_partition": i % 4, "event_count": i + 1, "value_sum": i * 0.5, "version": i,
        "emitted_at": 1_767_225_700_000,
    }  # fmt: skip


def test_envelopes_and_single_records_become_one_container():
    items = ItemSchemas(CATALOG, WINDOW_COUNT, WINDOW_COUNT_BATCH)
    one = Encoder(CATALOG.latest(WINDOW_COUNT))
    many = Encoder(CATALOG.latest(WINDOW_COUNT_BATCH))
    records = [window_count(i) for i in range(23)]
    messages = [many({"counts": records[:10]}), one(records[10]), many({"counts": records[11:]})]
    writer = None
    for message in messages:
        item, count, payload = block_of(message, items)
        writer = writer or ContainerWriter(item)
        assert item == writer.item
        writer.add_block(count, payload)
    assert writer.records == 23
    assert read(writer) == records


def test_enriched_envelopes_read_back_field_by_field():
    records = enriched_records()
    items = ItemSchemas(CATALOG, ENRICHED_EVENT, ENRICHED_EVENT_BATCH)
    message = Encoder(CATALOG.latest(ENRICHED_EVENT_BATCH))({"events": records})
    item, count, payload = block_of(message, items)
    writer = ContainerWriter(item)
    writer.add_block(count, payload)
    assert read(writer) == records


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x00\x00\x00\x00\x01body",  # Confluent framing: decoded by the caller
        b"\xc3\x01" + b"\x00" * 8 + b"\x02",  # unknown fingerprint
        Encoder(CATALOG.latest(WINDOW_COUNT_BATCH))({"counts": []}),  # empty envelope
        Encoder(CATALOG.latest(ENRICHED_EVENT_BATCH))({"events": []}),  # another table's
    ],
)
def test_what_cannot_be_passed_through_is_refused(message):
    with pytest.raises(NotPassthroughError):
        block_of(message, ItemSchemas(CATALOG, WINDOW_COUNT, WINDOW_COUNT_BATCH))
