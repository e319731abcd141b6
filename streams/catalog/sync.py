"""One catalog sync: every source read whole first, then the topics made to hold it.

Sources: plugin files (``plugins:``), Backstage entity files, and Backstage's catalog API. The
plugin topic is synced when a plugin file is given; the people and groups topics when entity
files or the API are. Nothing is published unless every source was read: a failed read, or an
org that is suddenly empty while the topics hold one, leaves the last good catalog in place.

People: key = the user's keyed id, a tombstone when they leave every group or the catalog.
Groups: key = the group ref; a group is republished whenever it changes and at least once per
UTC day, which makes the sinks' ``group_members`` table a daily snapshot; a group gone from the
catalog gets one record with ``deleted`` set and no members.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import GROUP_INFO, PERSON, PLUGIN_INFO, Encoder, default_catalog
from streams.catalog import CatalogError, entities, org, plugins, topic
from streams.catalog.backstage import BackstageCatalog
from streams.catalog.topic import Records
from streams.errors import StreamsError
from streams.settings import CatalogSettings

log = logging.getLogger("pulse.streams.catalog")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Sources:
    paths: tuple[Path, ...] = ()
    backstage_url: str | None = None
    token_file: Path | None = None

    def __post_init__(self) -> None:
        if bool(self.backstage_url) != bool(self.token_file):
            raise CatalogError("--from-backstage needs --token-file (and the other way round)")
        if not self.paths and not self.backstage_url:
            raise CatalogError("nothing to sync: give files, --from-backstage, or both")

    def named(self) -> str:
        return ", ".join([str(p) for p in self.paths] + [self.backstage_url or ""]).strip(", ")


@dataclass
class Read:
    """What one round read: plugin records (None: no plugin file given) and the org (None: no
    people source given)."""

    plugins: Records | None = None
    org: org.Org | None = None


def read(sources: Sources) -> Read:
    out = Read()
    entity_files: list[Path] = []
    for path in sources.paths:
        first = entities.first_document(path)
        if plugins.is_plugin_file(first):
            found = plugins.load_file(path)
            twice = set(found) & set(out.plugins or {})
            if twice:
                raise CatalogError(f"{path}: plugin {sorted(twice)[0]!r} is in two files")
            out.plugins = {**(out.plugins or {}), **found}
        else:
            entity_files.append(path)
    streams = [entities.entities(entity_files)] if entity_files else []
    if sources.backstage_url and sources.token_file:
        api = BackstageCatalog(sources.backstage_url, _token(sources.token_file))
        streams += [api.entities("user"), api.entities("group")]
    if streams:
        out.org = org.resolve(itertools.chain(*streams))
    return out


def _token(path: Path) -> str:
    """Read at each round, so a rotated token is picked up; never logged."""
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    if not token:
        raise CatalogError(f"{path}: the token file is empty")
    return token


def same_snapshot(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """A group record on the topic stands for today when nothing but its sync time differs
    and it was synced the same UTC day."""
    return current["synced_at"] // DAY_MS == wanted["synced_at"] // DAY_MS and {
        **current,
        "synced_at": 0,
    } == {**wanted, "synced_at": 0}


def group_changes(current: Records, wanted: Records, now_ms: int) -> Records:
    """Group records to publish: changed or not yet snapshotted today, and one ``deleted``
    record (no members) for each group gone from the catalog since the last sync."""
    upserts, gone = topic.diff(current, wanted, same_snapshot)
    for ref in gone:
        if not current[ref]["deleted"]:
            upserts[ref] = {**current[ref], "members": 0, "direct_members": 0,
                            "deleted": True, "synced_at": now_ms}  # fmt: skip
    return upserts


class CatalogSync:
    def __init__(
        self,
        settings: CatalogSettings,
        sources: Sources,
        *,
        allow_empty: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._sources = sources
        self._allow_empty = allow_empty
        self._clock = clock
        self._keyed: Callable[[str], str] | None = None

    def round(self) -> list[str]:
        """Read every source, then publish what changed; the lines say what happened."""
        s = self._settings
        found = read(self._sources)
        lines = []
        if found.plugins is not None:
            published, deleted = topic.sync(s.kafka_bootstrap, s.topic_catalog, PLUGIN_INFO,
                                            found.plugins)  # fmt: skip
            lines.append(_line("plugins", len(found.plugins), published, deleted))
        if found.org is not None:
            lines += found.org.report.lines()
            lines += self._publish_org(found.org)
        return lines

    def _publish_org(self, resolved: org.Org) -> list[str]:
        s, now_ms = self._settings, int(self._clock() * 1000)
        if self._keyed is None:
            try:
                self._keyed = s.keyer()
            except ValueError as exc:
                raise CatalogError(str(exc)) from exc
        # People are compared as encoded (Avro encoding is deterministic): 50,000 of them cost
        # a few MB as bytes, and far more as decoded records.
        encode = Encoder(default_catalog().latest(PERSON))
        erased = topic.read_values(s.kafka_bootstrap, s.topic_erasures)  # never published again
        people = {user_id: encode(record) for user_id, record in resolved.people(self._keyed)
                  if user_id not in erased}  # fmt: skip
        groups = resolved.group_records(now_ms)
        current_people = topic.read_values(s.kafka_bootstrap, s.topic_people)
        current_groups = topic.read_topic(s.kafka_bootstrap, s.topic_groups, GROUP_INFO)
        live = sum(1 for g in current_groups.values() if not g["deleted"])
        if not groups and not people and (live or current_people) and not self._allow_empty:
            raise CatalogError(
                f"{self._sources.named()} hold no users or groups, and the topics "
                f"hold {len(current_people)} people and {live} groups: keeping them "
                "(--allow-empty clears them)"
            )
        upserts, deletes = topic.diff(current_people, people)
        topic.publish_encoded(s.kafka_bootstrap, s.topic_people,
                              {**upserts, **dict.fromkeys(deletes)})  # fmt: skip
        changed = group_changes(current_groups, groups, now_ms)
        topic.publish(s.kafka_bootstrap, s.topic_groups, GROUP_INFO, changed, [])
        gone = sorted(r for r, g in changed.items() if g["deleted"])
        return [
            f"people: {len(people)} in groups: published {len(upserts)}, deleted {len(deletes)}",
            f"groups: {len(groups)}: published {len(changed) - len(gone)}, "
            f"deleted {len(gone)}{' (' + ', '.join(gone[:20]) + ')' if gone else ''}",
        ]

    def watch(self, every_s: float, stop: Callable[[], bool]) -> None:
        """A round every ``every_s`` until ``stop``; a failed round is logged and the topics
        keep the last good catalog until a later round succeeds."""
        while not stop():
            started = self._clock()
            try:
                for line in self.round():
                    log.info("%s", line)
            except StreamsError as exc:  # a source or Kafka: the next round tries again
                log.error("catalog sync failed; the last good catalog stays: %s", exc)
            while not stop() and self._clock() - started < every_s:
                time.sleep(min(1.0, every_s))


def _line(what: str, total: int, published: list[str], deleted: list[str]) -> str:
    def named(keys: list[str]) -> str:
        return f" ({', '.join(keys[:20])}{', ...' if len(keys) > 20 else ''})" if keys else ""

    return (
        f"{total} {what}: published {len(published)}{named(published)}, "
        f"deleted {len(deleted)}{named(deleted)}"
    )
