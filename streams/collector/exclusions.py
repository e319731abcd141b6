"""Users and groups an admin excludes (bots, load-test accounts): their events are refused at
the collector with reason ``excluded`` and never reach Kafka (pure; the people lookup is
injected).

Users are matched by keyed id, so an excluded user is recognised whether the event carried the
entity ref or a module's ``sha256:`` of it; groups through the catalog's people (the user's
direct groups and every group above them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from schemas.identity import Pseudonymizer, keyed_ids

# A keyed user id (hex, as the people topic keys it) -> the refs of the user's groups.
PeopleLookup = Callable[[str], tuple[str, ...] | None]


class Exclusions:
    def __init__(self, refs: Iterable[str], keyer: Pseudonymizer, people: PeopleLookup) -> None:
        refs = [r.strip() for r in refs if r.strip()]
        bad = [r for r in refs if not r.lower().startswith(("user:", "group:")) or "/" not in r]
        if bad:
            raise ValueError(f"not a user or group entity ref (kind:namespace/name): {bad[0]!r}")
        self.users = {i for r in refs if r.lower().startswith("user:") for i in keyed_ids(keyer, r)}
        self.groups = frozenset(r.lower() for r in refs if r.lower().startswith("group:"))
        self._people = people

    def __bool__(self) -> bool:
        return bool(self.users or self.groups)

    def __call__(self, user_id: str | None) -> bool:
        """Whether an event of this keyed user (``hmac-sha256:<hex>``, or None) is refused."""
        if not user_id:
            return False
        digest = user_id.rpartition(":")[2]
        if digest in self.users:
            return True
        return bool(self.groups) and not self.groups.isdisjoint(self._people(digest) or ())
