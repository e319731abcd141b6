import hashlib

import pytest

from schemas.identity import Pseudonymizer
from streams.collector.exclusions import Exclusions

KEYER = Pseudonymizer(b"x" * 32)
PEOPLE = {KEYER("user:default/ada"): ("group:default/bots", "group:default/acme")}.get


def sent(user: str) -> str:
    """The keyed id the collector gives what a module sent."""
    return KEYER.key(user)


def test_an_excluded_user_is_refused_however_the_id_was_sent():
    excluded = Exclusions(["user:default/Load-Test"], KEYER, PEOPLE)
    for form in ("user:default/Load-Test", "user:default/load-test",
                 "sha256:" + hashlib.sha256(b"user:default/Load-Test").hexdigest(),
                 "sha256:" + hashlib.sha256(b"user:default/load-test").hexdigest()):  # fmt: skip
        assert excluded(sent(form)), form
    assert not excluded(sent("user:default/jane"))
    assert not excluded(None) and not excluded("")


def test_a_group_excludes_its_members_and_those_below_it():
    excluded = Exclusions(["group:default/Bots"], KEYER, PEOPLE)
    assert excluded(sent("user:default/ada"))  # in bots (direct or as an ancestor)
    assert not excluded(sent("user:default/grace"))  # the catalog does not know her
    assert not Exclusions(["group:default/other"], KEYER, PEOPLE)(sent("user:default/ada"))


def test_nothing_excluded_and_bad_refs():
    assert not Exclusions(["", " "], KEYER, PEOPLE)
    for bad in ("jane", "component:default/x", "user:jane"):
        with pytest.raises(ValueError, match="entity ref"):
            Exclusions([bad], KEYER, PEOPLE)
