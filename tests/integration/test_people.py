"""People and groups from Backstage entity files, through the real broker into chDB: the sync
publishes keyed people and group snapshots, refuses bad or empty catalogs, and follows moves;
the worker stamps each event with its user's groups as of the event."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from schemas import GROUP_INFO, PERSON
from sinks.erasure import mark
from sinks.settings import SinkSettings
from streams.catalog.topic import read_topic
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings
from streams.tools.traffic import Traffic, TrafficConfig

from .conftest import REPO, SECRET, wait_for
from .test_pipeline import query, scalar

ORG = Path(__file__).parents[1] / "fixtures" / "org"


def keyed(ref: str) -> str:
    return hmac.new(SECRET.encode(), ref.encode(), hashlib.sha256).hexdigest()


def sync(env, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "streams", "catalog", "sync", *args],
        cwd=REPO, env=env.child(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if check and out.returncode != 0:
        raise AssertionError(f"sync failed ({out.returncode}): {out.stdout}{out.stderr}")
    return out


def topics(env, bootstrap) -> tuple[dict, dict]:
    return (read_topic(bootstrap, env["PULSE_TOPIC_PEOPLE"], PERSON),
            read_topic(bootstrap, env["PULSE_TOPIC_GROUPS"], GROUP_INFO))  # fmt: skip


def org_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "org"
    shutil.copytree(ORG, folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_sync_publishes_keyed_people_and_group_snapshots_and_follows_changes(
    pulse_env, broker, tmp_path
):
    org = org_copy(tmp_path)
    out = sync(pulse_env, str(org / "org.yaml")).stdout
    assert "21 users, 7 groups" in out and "1 users in no group" in out
    assert "people: 20 in groups: published 20, deleted 0" in out
    assert "groups: 7: published 7, deleted 0" in out
    people, groups = topics(pulse_env, broker.bootstrap)
    assert set(people) == {keyed(f"user:default/{n}") for n in
                           ["ada", "grace", "data-1", "data-2"]
                           + [f"platform-{i}" for i in range(1, 7)]
                           + [f"web-{i}" for i in range(1, 5)]
                           + [f"field-{i}" for i in range(1, 7)]}  # fmt: skip
    ada = people[keyed("user:default/ada")]
    assert {g["ref"] for g in ada["groups"]} == {
        "group:default/platform", "group:default/web", "group:default/engineering",
        "group:default/acme"}  # fmt: skip
    members = {ref: g["members"] for ref, g in groups.items()}
    assert members == {"group:default/acme": 20, "group:default/engineering": 14,
                       "group:default/sales": 6, "group:default/platform": 8,
                       "group:default/web": 6, "group:default/data": 2,
                       "group:default/field": 6}  # fmt: skip
    raw = b"".join(str(v).encode() for v in people.values())
    assert b"ada" not in raw.replace(b"acme", b"")  # no raw user ref at rest

    assert "published 0, deleted 0" in sync(pulse_env, str(org / "org.yaml")).stdout  # same day

    # Ada leaves web; the data team is dissolved (its two members are now in no group).
    edit(org / "people.yaml", "memberOf: [platform, web]", "memberOf: [platform]")
    edit(org / "org.yaml", "children: [platform, web, data]", "children: [platform, web]")
    text = (org / "org.yaml").read_text()
    start = text.index("# A team of two")
    (org / "org.yaml").write_text(text[:start] + text[text.index("---", start) + 4 :])
    out = sync(pulse_env, str(org / "org.yaml")).stdout
    assert "2 memberships of groups that do not exist" in out
    assert "people: 18 in groups: published 1, deleted 2" in out
    assert "groups: 6: published 3, deleted 1 (group:default/data)" in out
    people, groups = topics(pulse_env, broker.bootstrap)
    assert keyed("user:default/data-1") not in people
    assert groups["group:default/data"]["deleted"] and groups["group:default/data"]["members"] == 0
    assert groups["group:default/engineering"]["members"] == 12
    assert groups["group:default/web"]["members"] == 5


def test_bad_or_empty_catalogs_never_replace_a_good_one(pulse_env, broker, tmp_path):
    org = org_copy(tmp_path)
    sync(pulse_env, str(org / "org.yaml"))
    before = topics(pulse_env, broker.bootstrap)

    edit(org / "people.yaml", "name: web-3", "name: web 3!")
    out = sync(pulse_env, str(org / "org.yaml"), check=False)
    assert out.returncode != 0
    assert "people.yaml#" in out.stderr and "User web 3! is not a valid entity" in out.stderr
    assert topics(pulse_env, broker.bootstrap) == before

    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n"
                     "  name: svc\nspec:\n  type: service\n")  # fmt: skip
    out = sync(pulse_env, str(empty), check=False)
    assert out.returncode != 0 and "hold no users or groups" in out.stderr
    assert topics(pulse_env, broker.bootstrap) == before

    out = sync(pulse_env, str(empty), "--allow-empty")
    assert "people: 0 in groups: published 0, deleted 20" in out.stdout
    people, groups = topics(pulse_env, broker.bootstrap)
    assert people == {} and all(g["deleted"] for g in groups.values())


def test_watch_resyncs_until_stopped(pulse_env, broker, tmp_path):
    org = org_copy(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "catalog", "sync", str(org / "org.yaml"),
         "--watch", "1"],
        cwd=REPO, env=pulse_env.child(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: len(topics(pulse_env, broker.bootstrap)[0]) == 20, 60, "first sync")
        edit(org / "people.yaml", "memberOf: [field]", "memberOf: [web]")  # field-1 moves
        wait_for(
            lambda: topics(pulse_env, broker.bootstrap)[1]["group:default/web"]["members"] == 7,
            60, "the watch to publish the move",
        )  # fmt: skip
        (org / "people.yaml").write_text("kind: [")  # a broken file: the round fails
        time.sleep(3)
        assert topics(pulse_env, broker.bootstrap)[1]["group:default/web"]["members"] == 7
        assert proc.poll() is None
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    assert "catalog sync failed; the last good catalog stays" in output
    assert "Traceback" not in output


def test_events_carry_their_users_groups_as_of_the_event(pulse_env, processes, broker, tmp_path):
    org = org_copy(tmp_path)
    sync(pulse_env, str(org / "org.yaml"))
    ensure_topics(wait_for_broker(broker.bootstrap), pulse_topics(KafkaSettings()), 4)
    processes.start("streams", "streams", "worker")
    processes.start("sink", "sinks", "run")
    now_ms = int(time.time() * 1000)
    template = Traffic(TrafficConfig(seed=5, start_ms=now_ms - 60_000)).take(1)[0]
    producer = EventProducer(broker.bootstrap, pulse_env["PULSE_TOPIC_RAW"])

    def send(user: str | None, at_ms: int) -> str:
        event_id = str(uuid.uuid4())
        producer.send({**template, "event_id": event_id, "user_id": user, "event_time": at_ms,
                       "session_id": str(uuid.uuid4())})  # fmt: skip
        return event_id

    # Backstage's ref case does not matter: user:default/Ada is ada.
    before = {send("user:default/Ada", now_ms - 30_000): "ada",
              send("user:default/guest", now_ms - 30_000): "guest",
              send("user:default/stranger", now_ms - 30_000): "stranger",
              send(None, now_ms - 30_000): "anonymous"}  # fmt: skip
    producer.flush()
    wait_for(lambda: scalar("SELECT count() FROM pulse.events FINAL") >= 4, 120, "4 events")
    wait_for(lambda: scalar("SELECT count() FROM pulse.group_members FINAL") >= 7, 60,
             "7 group snapshots")  # fmt: skip

    edit(org / "people.yaml", "memberOf: [platform, web]", "memberOf: [field]")  # ada moves
    sync(pulse_env, str(org / "org.yaml"))
    moved = ["group:default/acme", "group:default/field", "group:default/sales"]
    after = []

    def stamped_with_the_move() -> bool:
        # The worker's people table follows the topic: send until an event carries the move.
        after.append(send("user:default/ada", now_ms - 10_000))
        producer.flush()
        wait_for(lambda: scalar("SELECT count() FROM pulse.events FINAL") >= 4 + len(after),
                 120, "the event from ada")  # fmt: skip
        groups = query(f"SELECT groups FROM pulse.events FINAL WHERE event_id = '{after[-1]}'")
        return sorted(groups[0]["groups"]) == moved

    wait_for(stamped_with_the_move, 120, "an event stamped with ada's new groups", 1.0)
    wait_for(lambda: scalar("SELECT count() FROM pulse.group_members FINAL "
                            "WHERE ref = 'group:default/web' AND members = 5") == 1, 60,
             "web's new population")  # fmt: skip

    rows = {r["id"]: r["groups"] for r in query(
        "SELECT toString(event_id) AS id, groups FROM pulse.events FINAL")}  # fmt: skip
    got = {who: sorted(rows[i]) for i, who in before.items()}
    assert got == {
        "ada": ["group:default/acme", "group:default/engineering", "group:default/platform",
                "group:default/web"],
        "guest": [], "stranger": [], "anonymous": [],
    }  # fmt: skip
    assert sorted(rows[after[-1]]) == moved
    ada = [e for e in after[:-1] if sorted(rows[e]) != moved]  # sent before the table followed
    by_group = {r["g"]: (int(r["events"]), int(r["users"])) for r in query(
        "SELECT group_ref AS g, sum(events) AS events, uniqExactMerge(users) AS users "
        "FROM pulse.usage_daily_by_group GROUP BY g")}  # fmt: skip
    old, new = 1 + len(ada), len(after) - len(ada)
    assert by_group == {
        "group:default/acme": (old + new, 1), "group:default/engineering": (old, 1),
        "group:default/platform": (old, 1), "group:default/web": (old, 1),
        "group:default/sales": (new, 1), "group:default/field": (new, 1),
        "(no group)": (3, 2),  # guest and the stranger; the anonymous event has no user
    }  # fmt: skip
    assert processes.stop("sink") == 0 and processes.stop("streams") == 0


def test_an_erased_person_is_not_published_again(pulse_env, broker, tmp_path):
    org = org_copy(tmp_path)
    sync(pulse_env, str(org / "org.yaml"))
    ada = keyed("user:default/ada")
    erasures = SinkSettings(kafka_bootstrap=broker.bootstrap,
                            topic_erasures=pulse_env["PULSE_TOPIC_ERASURES"],
                            topic_people=pulse_env["PULSE_TOPIC_PEOPLE"])  # fmt: skip
    mark.publish(erasures, (ada,), "e1", datetime.now(UTC))  # tombstones her record
    out = sync(pulse_env, str(org / "org.yaml")).stdout
    assert "people: 19 in groups: published 0, deleted 0" in out
    people, _ = topics(pulse_env, broker.bootstrap)
    assert ada not in people and len(people) == 19
