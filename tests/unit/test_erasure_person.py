"""Who an erasure names: every keyed id of the ref, and what a producer sent of it."""

from __future__ import annotations

import hashlib

import pytest

from schemas.identity import Pseudonymizer
from sinks.erasure.person import Person, named

KEYER = Pseudonymizer(b"s" * 32)


def test_a_ref_names_its_keyed_ids_as_collector_and_producers_key_it():
    person = Person.of_ref("user:default/Jane", KEYER)
    assert person.user_id == KEYER("user:default/jane")  # refs are keyed lower-cased
    sha = "sha256:" + hashlib.sha256(b"user:default/Jane").hexdigest()
    sha_lower = "sha256:" + hashlib.sha256(b"user:default/jane").hexdigest()
    assert set(person.user_ids) == {person.user_id, KEYER(sha), KEYER(sha_lower)}
    # In a dead letter: the ref as an Avro string (length first: not a prefix of a longer ref)
    assert b"\x22user:default/Jane" in person.needles
    assert not any(n.endswith(b"user:default/Janet") for n in person.needles)


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({}, "name one person"),
        ({"user": "user:default/a", "user_id": "a" * 64}, "name one person"),
        ({"user": "group:default/a"}, "not a user entity ref"),
        ({"user_id": "xyz"}, "64 hex"),
        ({"user_id": ["a" * 64]}, "name one person"),
    ],
)
def test_a_request_names_exactly_one_person(request_, error):
    with pytest.raises(ValueError, match=error):
        named(request_, "s" * 32)


def test_a_keyed_id_is_taken_as_events_carry_it():
    assert named({"user_id": "hmac-sha256:" + "AB" * 32}, None).user_ids == ("ab" * 32,)
    with pytest.raises(ValueError, match="PULSE_USER_ID_SECRET"):
        named({"user": "user:default/a"}, None)
