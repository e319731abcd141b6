"""User ids as Pulse keys them (part of the contract: events, the people topic, erasures and
exclusions all carry or match these keyed ids; no raw user ref leaves the streams stage).

Whatever a producer sends, an entity ref such as ``user:default/jane`` or an unsalted SHA-256
of it (which anyone can recompute from a known ref, so it is keyed too), is replaced by
HMAC-SHA-256 under a secret. A value already keyed by Pulse with the same secret (the collector
does that) arrives tagged ``hmac-sha256:<64 hex>`` and passes through untagged.

An entity ref is keyed lower-cased, as Backstage compares refs: ``user:default/Jane`` and
``user:default/jane`` are one user, and the catalog sync keys its users the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PRE_KEYED_PREFIX = "hmac-sha256:"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENTITY_REF = re.compile(r"[A-Za-z][A-Za-z0-9-]*:[^/:\s]+/[^/:\s]+")


class Pseudonymizer:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the user id secret must be at least 16 bytes")
        self._secret = secret
        self._cache: dict[str, str] = {}

    def key(self, user_ref: str) -> str:
        """The HMAC of a ref, tagged as pre-keyed (what a collector sends)."""
        return PRE_KEYED_PREFIX + self(user_ref)

    def __call__(self, user_ref: str | None) -> str:
        if not user_ref:
            return ""
        digest = self._cache.get(user_ref)
        if digest is None:
            tail = user_ref[len(PRE_KEYED_PREFIX) :]
            if user_ref.startswith(PRE_KEYED_PREFIX) and _HEX64.fullmatch(tail):
                digest = tail
            else:
                ref = user_ref.lower() if _ENTITY_REF.fullmatch(user_ref) else user_ref
                digest = hmac.new(self._secret, ref.encode(), hashlib.sha256).hexdigest()
            if len(self._cache) < 100_000:  # users are few; bound it anyway
                self._cache[user_ref] = digest
        return digest


def keyed_ids(keyer: Pseudonymizer, user_ref: str) -> set[str]:
    """Every id ``user_ref``'s events can carry once keyed: the ref's, and that of a
    ``sha256:`` of the ref as Backstage spelled it or lower-cased."""
    ids = {keyer(user_ref)}
    for spelling in {user_ref, user_ref.lower()}:
        ids.add(keyer("sha256:" + hashlib.sha256(spelling.encode()).hexdigest()))
    return ids
