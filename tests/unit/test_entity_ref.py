import pytest

from streams.job.entity_ref import EMPTY, EntityRef, from_route_params, parse


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("component:default/artist-lookup", EntityRef("component", "default", "artist-lookup")),
        ("Component:Prod/Shuffle-API", EntityRef("component", "prod", "Shuffle-API")),
        ("template:python-service", EntityRef("template", "default", "python-service")),
        ("artist-lookup", EntityRef("", "default", "artist-lookup")),
        ("", EMPTY),
        (None, EMPTY),
        ("component:default/", EMPTY),
        ("component:a/b/c", EMPTY),
    ],
)
def test_parse(ref, expected):
    assert parse(ref) == expected


def test_route_params():
    ref = from_route_params({"kind": "API", "namespace": "Default", "name": "streetlights"})
    assert str(ref) == "api:default/streetlights"
    assert from_route_params({"kind": "component", "name": "x"}).namespace == "default"
    assert from_route_params({"to": "/x"}) == EMPTY
    assert from_route_params({"kind": True, "name": "x"}) == EMPTY
