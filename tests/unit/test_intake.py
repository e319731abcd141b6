import pytest

from schemas.identity import Pseudonymizer
from streams.collector.intake import IntakeError, convert

KEY = Pseudonymizer(b"k" * 32).key
ENVELOPE = {"frontendSystem": "NEW", "appVersion": "1.2.3", "backstageVersion": "1.33.0",
            "collector": "backstage-plugin-analytics-module-pulse/0.1.0"}  # fmt: skip


def event(**changes):
    e = {
        "id": "0B9D6C1E-3F5A-4F7E-9A51-2C7A7E1D4B10",
        "timestamp": 1_767_225_600_123,
        "sessionId": "s-1",
        "user": "user:default/jane",
        "action": "navigate",
        "subject": "/catalog/default/component/svc",
        "value": None,
        "attributes": {"kind": "component", "n": 3, "ratio": 0.5, "ok": True, "gone": None},
        "context": {
            "pluginId": "catalog", "extensionId": "page:catalog", "routeRef": "catalog:entity",
            "entityRef": "component:default/svc", "searchTypes": ["software-catalog", "techdocs"],
            "team": "platform", "depth": 2.0, "undefinedKey": None,
        },
    }  # fmt: skip
    e.update(changes)
    return e


def test_a_backstage_event_becomes_the_contract_record():
    r = convert(event(), instance_id="acme", envelope=ENVELOPE, received_at=5, key_user=KEY)
    assert r["event_id"] == "0b9d6c1e-3f5a-4f7e-9a51-2c7a7e1d4b10"
    assert (r["event_time"], r["received_at"], r["session_id"]) == (1_767_225_600_123, 5, "s-1")
    assert r["user_id"].startswith("hmac-sha256:") and "jane" not in r["user_id"]
    assert r["attributes"] == {"kind": "component", "n": 3, "ratio": 0.5, "ok": True}
    assert r["context"] == {
        "plugin_id": "catalog", "extension": None, "extension_id": "page:catalog",
        "route_ref": "catalog:entity", "entity_ref": "component:default/svc",
        "search_types": "software-catalog,techdocs", "extra": {"team": "platform", "depth": 2},
    }  # fmt: skip
    assert r["source"] == {
        "instance_id": "acme",
        "frontend_system": "NEW",
        "app_version": "1.2.3",
        "backstage_version": "1.33.0",
        "collector": "backstage-plugin-analytics-module-pulse/0.1.0",
    }


def test_a_sha256_from_the_module_is_keyed_too_and_no_user_stays_none():
    digest = "a" * 64
    r = convert(event(user=f"sha256:{digest}"), instance_id="i", envelope={}, received_at=1,
                key_user=KEY)  # fmt: skip
    assert r["user_id"] == KEY(f"sha256:{digest}") and digest not in r["user_id"]
    r = convert(event(user=None), instance_id="i", envelope={}, received_at=1, key_user=KEY)
    assert r["user_id"] is None and r["source"]["frontend_system"] == "UNKNOWN"


def test_the_sender_says_whether_the_user_is_verified_never_the_body():
    claimed = convert(event(user_verified=True), instance_id="i", envelope={}, received_at=1,
                      key_user=KEY)  # fmt: skip
    assert claimed["user_verified"] is False
    backend = convert(event(), instance_id="i", envelope={}, received_at=1, key_user=KEY,
                      verified=True)  # fmt: skip
    assert backend["user_verified"] is True
    nobody = convert(event(user=None), instance_id="i", envelope={}, received_at=1,
                     key_user=KEY, verified=True)  # fmt: skip
    assert nobody["user_verified"] is False


def test_browser_and_backend_tokens_name_instances_and_never_repeat():
    from pydantic import SecretStr

    from streams.settings import CollectorSettings, Sender

    def settings(browser, backend=""):
        return CollectorSettings(
            collector_tokens=SecretStr(browser), collector_backend_tokens=SecretStr(backend),
            user_id_secret=SecretStr("s" * 16),
        )  # fmt: skip

    tokens = settings("web=" + "b" * 16, "web=" + "k" * 16).tokens()
    assert tokens == {"b" * 16: Sender("web", False), "k" * 16: Sender("web", True)}
    assert settings("web=" + "b" * 16).tokens() == {"b" * 16: Sender("web", False)}
    for browser, backend in [("web=short", ""), ("web=" + "b" * 16, "web=" + "b" * 16),
                             ("web=" + "b" * 16, "noequals" + "k" * 16)]:  # fmt: skip
        with pytest.raises(ValueError):
            settings(browser, backend).tokens()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": None}, "missing_field"),
        ({"id": "nope"}, "invalid_event_id"),
        ({"timestamp": "2026-01-01"}, "invalid_timestamp"),
        ({"timestamp": True}, "invalid_timestamp"),
        ({"timestamp": -5}, "invalid_timestamp"),
        ({"sessionId": None}, "missing_field"),
        ({"action": 3}, "invalid_type"),
        ({"value": "3"}, "invalid_type"),
        ({"attributes": {"nested": {"a": 1}}}, "invalid_type"),
        ({"attributes": {"big": 2**70}}, "invalid_type"),
        ({"attributes": []}, "invalid_type"),
        ({"subject": "x" * 20_000}, "too_long"),
    ],
)
def test_what_the_contract_cannot_hold_is_refused_with_a_reason(changes, reason):
    with pytest.raises(IntakeError) as info:
        convert(event(**changes), instance_id="i", envelope={}, received_at=1, key_user=KEY)
    assert info.value.reason == reason
    with pytest.raises(IntakeError):
        convert("not an object", instance_id="i", envelope={}, received_at=1, key_user=KEY)
