import hashlib
import hmac

import pytest

from schemas.identity import Pseudonymizer
from streams.job.enrich import enrich, frontend_system, no_people, normalise_plugin_id
from streams.tools.traffic import Traffic

SECRET = b"0123456789abcdef-test"


def _raw(**context):
    event = Traffic().take(1)[0]
    event["context"].update(context)
    return event


def _enrich(raw, now_ms=None, people=no_people):
    return enrich(
        raw,
        partition=3,
        offset=17,
        now_ms=now_ms if now_ms is not None else raw["event_time"] + 5,
        pseudonymize=Pseudonymizer(SECRET),
        people=people,
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [("catalog", "catalog"), (" TechDocs ", "techdocs"), ("root", "unknown"), ("app", "unknown"),
     ("", "unknown"), (None, "unknown")],
)  # fmt: skip
def test_plugin_ids_are_normalised(given, expected):
    assert normalise_plugin_id(given) == expected


def test_frontend_system_is_inferred_when_unknown():
    assert frontend_system("LEGACY", {"extension_id": "page:x"}) == "LEGACY"
    assert frontend_system("UNKNOWN", {"extension_id": "page:x"}) == "NEW"
    assert frontend_system("UNKNOWN", {"extension": "CatalogPage"}) == "LEGACY"
    assert frontend_system("UNKNOWN", {}) == "UNKNOWN"


@pytest.mark.parametrize(
    ("context", "page_view"),
    [({"extension": "App", "extension_id": None}, True),
     ({"extension": None, "extension_id": "app"}, True),
     ({"extension": None, "extension_id": "app/root"}, True),
     ({"extension": None, "extension_id": "page:catalog"}, True),
     ({"extension": None, "extension_id": "sub-page:catalog/overview"}, True),
     ({"extension": None, "extension_id": "entity-content:catalog/overview"}, True),
     ({"extension": None, "extension_id": "entity-card:catalog/about"}, False),
     ({"extension": "CatalogIndexPage", "extension_id": None}, False),
     ({"extension": "page:catalog", "extension_id": None}, False)],
)  # fmt: skip
def test_page_view_is_navigate_from_the_app_router(context, page_view):
    """The legacy router's extension is `App`; the new one's is the page whose route matched
    (as the real Backstage app in clients/backstage-app sends them)."""
    raw = _raw(**context)
    raw["action"] = "navigate"
    assert _enrich(raw)["is_page_view"] is page_view
    raw["action"] = "click"
    assert _enrich(raw)["is_page_view"] is False


def test_extension_coalesces_new_then_legacy():
    assert _enrich(_raw(extension="Legacy", extension_id="page:new"))["extension"] == "page:new"
    assert _enrich(_raw(extension="Legacy", extension_id=None))["extension"] == "Legacy"
    assert _enrich(_raw(extension=None, extension_id=None))["extension"] == ""


def test_attributes_and_extra_context_become_strings():
    raw = _raw(extra={"taskId": "t-1", "flag": True})
    raw["attributes"] = {"count": 3, "ratio": 0.5, "ok": False, "to": "/x"}
    attrs = _enrich(raw)["attributes"]
    assert attrs == {"taskId": "t-1", "flag": "true", "count": "3", "ratio": "0.5",
                     "ok": "false", "to": "/x"}  # fmt: skip


def test_received_at_and_lateness():
    raw = _raw()
    raw["received_at"] = None
    out = _enrich(raw, now_ms=raw["event_time"] + 90_000)
    assert out["received_at"] == raw["event_time"] + 90_000
    assert out["lateness_ms"] == 90_000
    raw["received_at"] = raw["event_time"] + 1234
    assert _enrich(raw, now_ms=0)["lateness_ms"] == 1234


def test_user_ids_are_pseudonymized_with_hmac():
    raw = _raw()
    raw["user_id"] = "user:default/jane"
    out = _enrich(raw)
    expected = hmac.new(SECRET, b"user:default/jane", hashlib.sha256).hexdigest()
    assert out["user_id"] == expected
    assert "jane" not in repr(out)
    sha = hashlib.sha256(b"user:default/jane").hexdigest()  # unsalted hashes are keyed too
    raw["user_id"] = sha
    assert _enrich(raw)["user_id"] not in (sha, expected)
    raw["user_id"] = None
    assert _enrich(raw)["user_id"] == ""


def test_entity_refs_are_keyed_case_insensitively_as_backstage_compares_them():
    raw = _raw()
    expected = hmac.new(SECRET, b"user:default/jane.doe", hashlib.sha256).hexdigest()
    for ref in ("user:default/Jane.Doe", "User:Default/JANE.DOE", "user:default/jane.doe"):
        raw["user_id"] = ref
        assert _enrich(raw)["user_id"] == expected
    raw["user_id"] = "Jane.Doe@example.com"  # not an entity ref: keyed as it is
    assert _enrich(raw)["user_id"] == hmac.new(
        SECRET, b"Jane.Doe@example.com", hashlib.sha256).hexdigest()  # fmt: skip


def test_groups_are_stamped_from_the_people_table_by_keyed_id():
    raw = _raw()
    raw["user_id"] = "user:default/jane"
    key = hmac.new(SECRET, b"user:default/jane", hashlib.sha256).hexdigest()
    people = {key: ("group:default/acme", "group:default/web")}.get
    assert _enrich(raw, people=people)["groups"] == ["group:default/acme", "group:default/web"]
    raw["user_id"] = "user:default/stranger"
    assert _enrich(raw, people=people)["groups"] == []
    raw["user_id"] = None
    assert _enrich(raw, people=lambda _: ("group:default/x",))["groups"] == []


def test_a_user_is_verified_only_when_the_sender_said_so_and_there_is_one():
    raw = _raw()
    raw["user_id"] = "user:default/jane"
    assert _enrich(raw)["user_verified"] is False
    raw["user_verified"] = True
    assert _enrich(raw)["user_verified"] is True
    raw["user_id"] = None  # nobody to vouch for
    assert _enrich(raw)["user_verified"] is False


def test_pseudonymizer_rejects_short_secrets():
    with pytest.raises(ValueError):
        Pseudonymizer(b"short")


def test_source_coordinates_are_kept():
    out = _enrich(_raw())
    assert (out["source_partition"], out["source_offset"]) == (3, 17)


@pytest.mark.parametrize(
    ("extension_id", "kind"),
    [("page:catalog", "page"), ("entity-card:catalog/about", "entity-card"),
     ("nav-item:search", "nav-item"), ("app", ""), (None, ""), ("CatalogIndexPage", "")],
)  # fmt: skip
def test_extension_kind_from_new_system_ids(extension_id, kind):
    assert _enrich(_raw(extension_id=extension_id, extension=None))["extension_kind"] == kind


def test_legacy_extension_names_are_kept():
    out = _enrich(_raw(extension="EntityAboutCard", extension_id=None))
    assert (out["extension"], out["extension_kind"]) == ("EntityAboutCard", "")


def test_entity_from_entity_ref_and_from_navigate_route_params():
    out = _enrich(_raw(entity_ref="Template:Default/react-ssr"))
    assert (out["entity_kind"], out["entity_namespace"], out["entity_name"]) == (
        "template", "default", "react-ssr")  # fmt: skip
    assert out["entity_ref"] == "template:default/react-ssr"
    raw = _raw(entity_ref=None)
    raw["action"] = "navigate"
    raw["attributes"] = {"kind": "Component", "namespace": "default", "name": "artist-lookup"}
    out = _enrich(raw)
    assert out["entity_ref"] == "component:default/artist-lookup"
    raw["action"] = "click"  # route params only count on page views
    assert _enrich(raw)["entity_ref"] == ""


def test_plugin_metadata_from_the_catalog():
    info = {"id": "catalog", "title": "Software Catalog", "owner": "group:default/platform",
            "lifecycle": "production", "package": "@backstage/plugin-catalog",
            "category": "core", "tags": []}  # fmt: skip
    raw = _raw(plugin_id="Catalog")
    out = enrich(raw, partition=0, offset=0, now_ms=raw["event_time"],
                 pseudonymize=Pseudonymizer(SECRET), plugins={"catalog": info}.get)  # fmt: skip
    assert out["plugin_known"] is True
    assert (out["plugin_title"], out["plugin_owner"], out["plugin_package"]) == (
        "Software Catalog", "group:default/platform", "@backstage/plugin-catalog")  # fmt: skip
    other = _enrich(_raw(plugin_id="no-such-plugin"))
    assert other["plugin_known"] is False and other["plugin_title"] == ""


def test_pre_keyed_ids_pass_through_untagged():
    p = Pseudonymizer(SECRET)
    tagged = p.key("user:default/jane")
    assert tagged.startswith("hmac-sha256:")
    assert p(tagged) == p("user:default/jane")
    assert p("hmac-sha256:not-hex") != "not-hex"  # a bad tag is keyed like anything else
