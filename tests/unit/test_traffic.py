import itertools
from collections import Counter

from streams.tools.traffic import Traffic, TrafficConfig


def test_same_seed_same_traffic():
    assert Traffic(TrafficConfig(seed=7)).take(500) == Traffic(TrafficConfig(seed=7)).take(500)
    assert Traffic(TrafficConfig(seed=7)).take(50) != Traffic(TrafficConfig(seed=8)).take(50)


def test_traffic_looks_like_backstage():
    events = Traffic(TrafficConfig(seed=3)).take(5000)
    actions = Counter(e["action"] for e in events)
    assert {"navigate", "click", "search", "discover", "create", "not-found"} <= set(actions)
    assert actions["navigate"] > actions["click"] > actions["create"]
    plugins = Counter(e["context"]["plugin_id"] for e in events)
    top, _ = plugins.most_common(1)[0]
    assert plugins[top] > 10 * plugins["user-settings"]  # skewed popularity
    systems = Counter(e["source"]["frontend_system"] for e in events)
    assert systems["LEGACY"] and systems["NEW"]
    page_views = [e for e in events if e["action"] == "navigate"]
    assert all(
        e["context"]["extension"] == "App"
        if e["source"]["frontend_system"] == "LEGACY"
        else e["context"]["extension_id"].startswith(("page:", "entity-content:"))
        for e in page_views
    )
    assert any(e["action"] == "search" and e["value"] == 0 for e in events)


def test_late_and_duplicate_shares():
    config = TrafficConfig(seed=5, late_fraction=0.1, duplicate_fraction=0.05)
    events = Traffic(config).take(4000)
    ids = Counter(e["event_id"] for e in events)
    dups = sum(n - 1 for n in ids.values())
    assert 100 < dups < 300
    out_of_order = sum(1 for a, b in itertools.pairwise(events)
                       if b["event_time"] < a["event_time"] - 60_000)  # fmt: skip
    assert out_of_order > 200


def test_no_late_no_duplicates_when_disabled():
    events = Traffic(TrafficConfig(seed=5, late_fraction=0, duplicate_fraction=0)).take(2000)
    assert len({e["event_id"] for e in events}) == 2000
    times = [e["event_time"] for e in events]
    assert times == sorted(times)
