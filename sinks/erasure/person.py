"""Who is erased (pure): every keyed id the person's events can carry, and what their dead
letters can hold of them as a producer sent it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from schemas.identity import PRE_KEYED_PREFIX, Pseudonymizer, keyed_ids

HEX64 = re.compile(r"[0-9a-f]{64}")


def _avro_string(text: str) -> bytes:
    """``text`` as Avro writes a string: its length (zig-zag varint), then its bytes; a raw
    ref matched so cannot be the start of a longer one."""
    data = text.encode()
    n, out = len(data) << 1, bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + data


@dataclass(frozen=True)
class Person:
    user_id: str  # the keyed id the receipt is filed under
    user_ids: tuple[str, ...]  # every keyed id erased
    # Byte strings whose presence in a dead letter's payload makes it the person's.
    needles: tuple[bytes, ...]

    @classmethod
    def of_ref(cls, ref: str, keyer: Pseudonymizer) -> Person:
        """A user entity ref (``user:default/jane``): keyed as the collector keys it, and as
        a producer's ``sha256:`` of it, as spelled or lower-cased."""
        ref = ref.strip()
        if not ref.lower().startswith("user:") or "/" not in ref:
            raise ValueError(f"not a user entity ref (user:namespace/name): {ref!r}")
        primary = keyer(ref)
        ids = (primary, *sorted(keyed_ids(keyer, ref) - {primary}))
        spellings = {ref, ref.lower()}
        sent = spellings | {"sha256:" + hashlib.sha256(s.encode()).hexdigest() for s in spellings}
        needles = {i.encode() for i in ids} | {_avro_string(s) for s in sent}
        return cls(primary, ids, tuple(sorted(needles)))

    @classmethod
    def of_id(cls, user_id: str) -> Person:
        """A keyed id as events carry it (64 hex; ``hmac-sha256:`` accepted)."""
        user_id = user_id.strip().lower().removeprefix(PRE_KEYED_PREFIX)
        if not HEX64.fullmatch(user_id):
            raise ValueError("a keyed user id is 64 hex characters (as events carry it)")
        return cls(user_id, (user_id,), (user_id.encode(),))


def named(request: dict, secret: str | None) -> Person:
    """The person a request names: ``{"user": entity ref}`` (keyed with ``secret``, the
    workers' PULSE_USER_ID_SECRET) or ``{"user_id": keyed id}``. Raises ValueError."""
    user, user_id = request.get("user"), request.get("user_id")
    if bool(user) == bool(user_id) or not isinstance(user or user_id, str):
        raise ValueError("name one person: a user entity ref (user) or a keyed id (user_id)")
    if user_id:
        return Person.of_id(user_id)
    if not secret:
        raise ValueError("erasing by entity ref needs PULSE_USER_ID_SECRET (or give the keyed id)")
    return Person.of_ref(user, Pseudonymizer(secret.encode()))
