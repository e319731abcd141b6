"""The hostile corpus: raw-topic messages that each declare their fate (pure).

A case is one Kafka message and what must become of it: events stored exactly as sent, dead
letters with given reasons (the whole message, or events of an envelope by index), or both.
Fates follow the contract in ``DESIGN.md`` and the streams limits, stated here independently
of the code that enforces them; ``tests/unit/test_proof_corpus.py`` runs every case through the
pure streams processor, and the proof through the running system.
"""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from schemas import (
    ANALYTICS_EVENT,
    ANALYTICS_EVENT_BATCH,
    ENRICHED_EVENT_BATCH,
    Encoder,
    default_catalog,
)

# The limits the proof runs the workers with (PULSE_MAX_MESSAGE_BYTES lowered so that an
# "enormous" message fits Kafka's default 1 MB message size).
MAX_MESSAGE_BYTES = 262_144
MAX_BATCH_EVENTS = 1000
MAX_SUBJECT_BYTES = 2048
MAX_FIELD_BYTES = 512
MAX_ATTRIBUTES = 64
MAX_KEY_BYTES = 128
MAX_VALUE_BYTES = 1024
FUTURE_SKEW_MS = 5 * 60_000
MAX_AGE_MS = 7 * 24 * 3_600_000

# Text that must survive Kafka, Avro, the workers, ClickHouse and JSON byte for byte.
NASTY = [
    "'; DROP TABLE pulse.events; --",
    "Robert'); DELETE FROM pulse.events WHERE ('1'='1",
    "quotes \" and ' and `backticks` and \\backslash\\ and \\N and \\\\N",
    "line one\nline two\r\nthree\tcolumns\x0bvertical",
    "nul \x00 inside, bell \x07, escape \x1b[31m",
    "emoji 👩‍💻🚀🏳️‍🌈 and flags 🇩🇪🇯🇵",
    "right-to-left: مرحبا بالعالم and עברית, override \u202eevil\u202c",
    "combining e\u0301 a\u030a and precomposed é å",
    "\ufeffBOM, zero\u200bwidth, joiner\u200d, non-breaking\u00a0space",
    "astral: \U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 𠜎 𐍈",
    '{"json": ["looking", 1, null]} <script>alert(1)</script> %s %n {0}',
    "tab\tseparated\tlooking\nrow",
]
POOL = "aZ09 '\"\\\n\t\x00é€😀\u202eע\u0301\ufeff{}[]%;-<>&"


@dataclass(frozen=True)
class Case:
    name: str
    key: bytes | None
    value: bytes | None
    stored: tuple[dict[str, Any], ...] = ()  # raw records expected in `events`
    dead: tuple[tuple[int | None, str], ...] = ()  # (batch index or None, reason)
    counted: bool = True  # whether its stored events fall in a counted window
    tags: frozenset[str] = field(default_factory=frozenset)


class Corpus:
    """Builds the cases for one run; ``now_ms`` is around when they will be produced."""

    def __init__(self, now_ms: int, seed: int) -> None:
        catalog = default_catalog()
        self.now_ms = now_ms
        self.rng = random.Random(seed)
        self.encode_event = Encoder(catalog.latest(ANALYTICS_EVENT))
        self.encode_batch = Encoder(catalog.latest(ANALYTICS_EVENT_BATCH))
        self.encode_other = Encoder(catalog.latest(ENRICHED_EVENT_BATCH))
        self._n = 0

    def event(self, **changes: Any) -> dict[str, Any]:
        """A valid raw event, then ``changes`` (``context__x`` and ``source__x`` reach inside)."""
        self._n += 1
        record: dict[str, Any] = {
            "schema_version": 1,
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "event_time": self.now_ms,
            "received_at": None,
            "session_id": f"hostile-session-{self._n}",
            "user_id": "user:default/mallory",
            "action": "navigate",
            "subject": f"/hostile/{self._n}",
            "value": None,
            "attributes": {},
            "context": {
                "plugin_id": "catalog",
                "extension": "App",
                "extension_id": None,
                "route_ref": "catalog:root",
                "entity_ref": None,
                "search_types": None,
                "extra": {},
            },
            "source": {
                "instance_id": "backstage.hostile.example",
                "frontend_system": "LEGACY",
                "app_version": "1.0.0",
                "backstage_version": "1.45.0",
                "collector": "pulse-proof",
            },
        }
        for name, value in changes.items():
            if name.startswith("context__"):
                record["context"][name[9:]] = value
            elif name.startswith("source__"):
                record["source"][name[8:]] = value
            else:
                record[name] = value
        return record

    def cases(self) -> list[Case]:
        out: list[Case] = []
        out += _wire(self)
        out += _invalid_events(self)
        out += _stored(self)
        out += _envelopes(self)
        names = [c.name for c in out]
        assert len(names) == len(set(names)), "case names are unique"
        return out


# -- messages that cannot be decoded --------------------------------------------------


def _wire(c: Corpus) -> list[Case]:
    good = c.encode_event(c.event())
    body_start = 10  # C3 01 + 8-byte fingerprint
    fp_flip = bytearray(good)
    fp_flip[4] ^= 0x10
    magic_flip = bytearray(good)
    magic_flip[0] ^= 0x01

    def flipped_text(field_name: str, text: str) -> bytes:
        """An encoded event whose ``field_name`` text has one bit flipped into invalid UTF-8
        (an ASCII byte becomes a lead byte followed by ASCII)."""
        raw = c.encode_event(c.event(**{field_name: text}))
        at = raw.index(text.encode())
        data = bytearray(raw)
        data[at] |= 0xC0  # 'x' (0x78) -> 0xF8: never valid in UTF-8
        return bytes(data)

    def dead(name: str, value: bytes | None, reason: str, key: bytes | None = None) -> Case:
        return Case(name, key if key is not None else name.encode(), value, dead=((None, reason),))

    garbage = bytes(c.rng.getrandbits(8) for _ in range(200))
    garbage = b"\x7f" + garbage[1:]
    enormous = b"\xc3\x01" + bytes(8) + b"z" * (MAX_MESSAGE_BYTES + 100)
    return [
        dead("empty_value", b"", "unknown_schema"),
        dead("null_value", None, "unknown_schema"),
        dead("one_byte", b"\xc3", "unknown_schema"),
        dead("wrong_magic_second_byte", b"\xc3\x02" + good[2:], "unknown_schema"),
        dead("wrong_magic_first_byte", b"\xc4" + good[1:], "unknown_schema"),
        dead(
            "confluent_magic_without_registry",
            b"\x00\x00\x00\x00\x07" + good[10:],
            "unknown_schema",
        ),
        dead("unknown_fingerprint", good[:2] + bytes(8) + good[body_start:], "unknown_schema"),
        dead("bit_flipped_fingerprint", bytes(fp_flip), "unknown_schema"),
        dead("bit_flipped_magic", bytes(magic_flip), "unknown_schema"),
        dead("a_record_of_another_schema", c.encode_other({"events": []}), "unknown_schema"),
        dead("garbage_bytes", garbage, "unknown_schema"),
        dead("truncated_header_2", good[:2], "undecodable"),
        dead("truncated_header_5", good[:5], "undecodable"),
        dead("truncated_header_9", good[:9], "undecodable"),
        dead("header_without_body", good[:10], "undecodable"),
        dead("truncated_body_quarter", good[: 10 + (len(good) - 10) // 4], "undecodable"),
        dead("truncated_body_half", good[: 10 + (len(good) - 10) // 2], "undecodable"),
        dead("truncated_last_byte", good[:-1], "undecodable"),
        dead("trailing_bytes", good + b"\x00\x02", "undecodable"),
        dead("invalid_utf8_subject", flipped_text("subject", "xsubjectx"), "invalid_utf8"),
        dead("invalid_utf8_session", flipped_text("session_id", "xsessionx"), "invalid_utf8"),
        dead("invalid_utf8_action", flipped_text("action", "xactionx"), "invalid_utf8"),
        dead("enormous_message", enormous, "oversize_message"),
        dead(
            "too_many_events",
            c.encode_batch({"events": [c.event() for _ in range(MAX_BATCH_EVENTS + 1)]}),
            "too_many_events",
        ),
        dead("non_utf8_key_with_garbage", b"\x01\x02", "unknown_schema", key=b"\xff\xfe\x80"),
    ]


# -- decodable events that break the contract ------------------------------------------


def _invalid_events(c: Corpus) -> list[Case]:
    now = c.now_ms
    attrs = {f"k{i}": "v" for i in range(MAX_ATTRIBUTES + 1)}
    split = {f"k{i}": "v" for i in range(40)}
    extra = {f"x{i}": "v" for i in range(MAX_ATTRIBUTES - 40 + 1)}
    specs: list[tuple[str, dict[str, Any], str]] = [
        ("empty_event_id", {"event_id": ""}, "missing_field"),
        ("invalid_event_id", {"event_id": "not-a-uuid"}, "invalid_event_id"),
        ("sql_event_id", {"event_id": "'; DROP TABLE pulse.events; --"}, "invalid_event_id"),
        ("empty_session", {"session_id": ""}, "missing_field"),
        ("empty_action", {"action": ""}, "missing_field"),
        ("oversize_action", {"action": "a" * (MAX_FIELD_BYTES + 1)}, "oversize_field"),
        ("oversize_session_multibyte", {"session_id": "€" * 171}, "oversize_field"),
        ("oversize_user_id", {"user_id": "u" * 600}, "oversize_field"),
        ("oversize_plugin_id", {"context__plugin_id": "p" * 600}, "oversize_field"),
        ("oversize_app_version", {"source__app_version": "9" * 600}, "oversize_field"),
        ("future_timestamp", {"event_time": now + 2 * FUTURE_SKEW_MS}, "bad_timestamp_future"),
        ("far_future_timestamp", {"event_time": 32_503_680_000_000}, "bad_timestamp_future"),
        (
            "ancient_timestamp",
            {"event_time": now - MAX_AGE_MS - 86_400_000},
            "bad_timestamp_past",
        ),
        ("epoch_zero_timestamp", {"event_time": 0}, "bad_timestamp_past"),
        ("negative_timestamp", {"event_time": -1}, "bad_timestamp_past"),
        ("oversize_subject", {"subject": "s" * (MAX_SUBJECT_BYTES + 1)}, "oversize_subject"),
        ("oversize_subject_multibyte", {"subject": "€" * 683}, "oversize_subject"),
        ("huge_subject", {"subject": "h" * 200_000}, "oversize_subject"),
        ("nan_value", {"value": float("nan")}, "non_finite_value"),
        ("infinite_value", {"value": float("inf")}, "non_finite_value"),
        ("negative_infinite_value", {"value": float("-inf")}, "non_finite_value"),
        ("nan_attribute", {"attributes": {"score": float("nan")}}, "non_finite_value"),
        ("too_many_attributes", {"attributes": attrs}, "too_many_attributes"),
        (
            "too_many_attributes_with_extra",
            {"attributes": split, "context__extra": extra},
            "too_many_attributes",
        ),
        (
            "huge_attribute_map",
            {"attributes": {f"a{i}": "v" * 100 for i in range(2000)}},
            "too_many_attributes",
        ),
        (
            "oversize_attribute_key",
            {"attributes": {"k" * (MAX_KEY_BYTES + 1): "v"}},
            "oversize_attribute",
        ),
        (
            "oversize_attribute_value",
            {"attributes": {"k": "v" * (MAX_VALUE_BYTES + 1)}},
            "oversize_attribute",
        ),
    ]
    return [
        Case(
            name,
            name.encode(),
            c.encode_event(c.event(**changes)),
            dead=((None, reason),),
        )
        for name, changes, reason in specs
    ]


# -- valid events that must come out of ClickHouse as they went in ---------------------


def _stored(c: Corpus) -> list[Case]:
    now = c.now_ms
    cases: list[Case] = []

    def stored(name: str, record: dict[str, Any], key: bytes | None = None, **kw: Any) -> None:
        key = name.encode() if key is None else key
        cases.append(Case(name, key, c.encode_event(record), stored=(record,), **kw))

    for i, text in enumerate(NASTY):
        stored(f"nasty_subject_{i}", c.event(subject=text))
    stored("nasty_attributes", c.event(attributes={t[:100]: t for t in NASTY[:8]}))
    stored("nasty_entity_ref", c.event(context__entity_ref="component:default/ö'\"\n"))
    for i in range(10):  # seeded random strings from a pool of troublesome characters
        text = "".join(c.rng.choice(POOL) for _ in range(c.rng.randint(1, 300)))
        stored(f"random_nasty_{i}", c.event(subject=text, action=f"act-{text[:20]}"))
    limit = "é" * (MAX_SUBJECT_BYTES // 2)  # exactly the limit in bytes
    stored("subject_at_the_limit", c.event(subject=limit))
    stored(
        "attributes_at_the_limits",
        c.event(
            attributes={
                f"{i:03d}" + "k" * (MAX_KEY_BYTES - 3): "v" * MAX_VALUE_BYTES
                for i in range(MAX_ATTRIBUTES)
            }
        ),
    )
    upper = c.event()
    upper["event_id"] = upper["event_id"].upper()
    stored("uppercase_event_id", upper)
    stored("non_utf8_key", c.event(), key=b"\xff\xfe\x00\x80")
    stored("empty_key", c.event(), key=b"")
    cases.append(Case("null_key", None, c.encode_event(r := c.event()), stored=(r,)))
    stored("zero_value", c.event(value=0.0))
    stored("negative_value", c.event(value=-1.5))
    stored("huge_value", c.event(value=1e300))
    stored("tiny_value", c.event(value=5e-324))
    stored("six_days_old", c.event(event_time=now - 6 * 86_400_000), counted=False)
    stored("four_minutes_ahead", c.event(event_time=now + 4 * 60_000))
    stored("no_user", c.event(user_id=None))
    stored("empty_subject", c.event(subject=""))
    return cases


# -- envelopes mixing good and bad events ----------------------------------------------


def _envelopes(c: Corpus) -> list[Case]:
    good = [c.event(session_id="hostile-envelope") for _ in range(3)]
    bad = [
        c.event(session_id="hostile-envelope", value=float("nan")),
        c.event(session_id="hostile-envelope", event_time=c.now_ms + 3_600_000),
    ]
    twice = c.event(session_id="hostile-twice")
    all_bad = [c.event(event_id="nope"), c.event(action="")]
    return [
        Case(
            "envelope_mixed",
            b"hostile-envelope",
            c.encode_batch({"events": good + bad}),
            stored=tuple(good),
            dead=((3, "non_finite_value"), (4, "bad_timestamp_future")),
        ),
        Case(
            "envelope_same_event_twice",
            b"hostile-twice",
            c.encode_batch({"events": [twice, copy.deepcopy(twice)]}),
            stored=(twice,),
        ),
        Case(
            "envelope_all_bad",
            b"hostile-all-bad",
            c.encode_batch({"events": all_bad}),
            dead=((0, "invalid_event_id"), (1, "missing_field")),
        ),
        Case("envelope_empty", b"hostile-empty", c.encode_batch({"events": []})),
    ]


def canonical_id(record: dict[str, Any]) -> str:
    return str(uuid.UUID(record["event_id"]))
