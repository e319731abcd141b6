import io
import json

import pytest
from fastavro import schemaless_writer

from schemas import (
    ANALYTICS_EVENT,
    ENRICHED_EVENT,
    Catalog,
    Decoder,
    Encoder,
    UndecodableError,
    UnknownSchemaError,
    default_catalog,
)
from schemas.catalog import AVRO_DIR, load_schema
from streams.tools.traffic import Traffic


@pytest.fixture(scope="module")
def catalog():
    return default_catalog()


def test_single_object_round_trip(catalog):
    encode = Encoder(catalog.latest(ANALYTICS_EVENT))
    decode = Decoder(catalog, ANALYTICS_EVENT)
    for event in Traffic().take(200):
        data = encode(event)
        assert data[:2] == b"\xc3\x01"
        assert data[2:10] == catalog.latest(ANALYTICS_EVENT).fingerprint
        assert decode(data) == event


def test_fingerprint_is_crc64_avro_of_canonical_form():
    # The Avro Java implementation's value for "int" is 0x7275d51a3f395c8f, sent little-endian.
    assert load_schema({"type": "int"}).fingerprint == bytes.fromhex("8f5c393f1ad57572")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", UnknownSchemaError),
        (b"\x00\x01", UnknownSchemaError),  # Confluent framing without a registry
        (b"garbage!", UnknownSchemaError),
        (b"\xc3\x01\x00", UndecodableError),  # truncated header
        (b"\xc3\x01" + b"\x00" * 8 + b"body", UnknownSchemaError),  # unknown fingerprint
    ],
)
def test_bad_headers_are_typed(catalog, data, error):
    with pytest.raises(error):
        Decoder(catalog, ANALYTICS_EVENT)(data)


def test_truncated_and_trailing_bodies_are_undecodable(catalog):
    data = Encoder(catalog.latest(ANALYTICS_EVENT))(Traffic().take(1)[0])
    decode = Decoder(catalog, ANALYTICS_EVENT)
    with pytest.raises(UndecodableError):
        decode(data[:-5])
    with pytest.raises(UndecodableError):
        decode(data + b"\x00")


def test_other_record_is_rejected(catalog):
    enriched = catalog.latest(ENRICHED_EVENT)
    data = b"\xc3\x01" + enriched.fingerprint + b"\x00"
    with pytest.raises(UnknownSchemaError, match="expected"):
        Decoder(catalog, ANALYTICS_EVENT)(data)


def test_confluent_framing_uses_the_registry_lookup(catalog):
    writer = catalog.latest(ANALYTICS_EVENT)
    event = Traffic().take(1)[0]
    buf = io.BytesIO()
    schemaless_writer(buf, writer.parsed, event)
    framed = b"\x00" + (42).to_bytes(4, "big") + buf.getvalue()
    decode = Decoder(catalog, ANALYTICS_EVENT, registry_lookup={42: writer}.__getitem__)
    assert decode(framed) == event
    with pytest.raises(UnknownSchemaError, match="schema id 7"):
        decode(b"\x00" + (7).to_bytes(4, "big") + buf.getvalue())


def test_newer_reader_resolves_older_writer():
    v1 = json.loads((AVRO_DIR / "AnalyticsEvent.v1.avsc").read_text())
    v2 = json.loads(json.dumps(v1))
    v2["fields"].append({"name": "tenant", "type": "string", "default": "acme"})
    catalog = Catalog([load_schema(v1, 1), load_schema(v2, 2)])
    data = Encoder(catalog.versions(ANALYTICS_EVENT)[0])(Traffic().take(1)[0])
    record = Decoder(catalog, ANALYTICS_EVENT)(data)
    assert record["tenant"] == "acme"


def test_logical_types_decode_as_plain_values(catalog):
    event = Traffic().take(1)[0]
    record = Decoder(catalog, ANALYTICS_EVENT)(Encoder(catalog.latest(ANALYTICS_EVENT))(event))
    assert isinstance(record["event_time"], int)
    assert isinstance(record["event_id"], str)
