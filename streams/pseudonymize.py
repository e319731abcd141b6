"""User pseudonymization: no raw user ref leaves the streams stage.

Whatever a producer sends (an entity ref such as ``user:default/jane`` or an unsalted SHA-256
of it, which anyone can recompute from a known ref) is replaced by HMAC-SHA-256 under a secret.
"""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymizer:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the user id secret must be at least 16 bytes")
        self._secret = secret
        self._cache: dict[str, str] = {}

    def __call__(self, user_ref: str | None) -> str:
        if not user_ref:
            return ""
        digest = self._cache.get(user_ref)
        if digest is None:
            digest = hmac.new(self._secret, user_ref.encode(), hashlib.sha256).hexdigest()
            if len(self._cache) < 100_000:  # users are few; bound it anyway
                self._cache[user_ref] = digest
        return digest
