"""Who may read: bearer tokens (one per consumer), the admin token, and browser sessions (pure).

Every request for analytics names a credential: ``Authorization: Bearer <token>``, or HTTP
Basic with the token as the password (how clickhouse-connect and Grafana's ClickHouse
datasource send one), or the session cookie a browser got by opening the dashboard once with
``?token=``. Tokens are compared in constant time and never logged; a consumer is known by its
name only. Loopback is no exception: other local users and any page in a browser reach it too.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sinks.errors import SinkError

SESSION_COOKIE = "pulse_session"
SESSION_TTL_S = 12 * 3600
MAX_SESSIONS = 1000
MIN_TOKEN_CHARS = 16


class CredentialError(SinkError):
    """A malformed token setting."""


@dataclass(frozen=True)
class Caller:
    name: str  # the consumer's name (never its token)
    admin: bool = False


def parse_tokens(text: str) -> dict[str, str]:
    """``name=token,name=token`` -> name -> token (tokens of 16+ characters, names unique)."""
    tokens: dict[str, str] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        name, sep, token = pair.partition("=")
        name, token = name.strip(), token.strip()
        if not sep or not name or len(token) < MIN_TOKEN_CHARS or name in tokens:
            raise CredentialError(
                "PULSE_QUERY_READ_TOKENS: unique name=token pairs, tokens of 16+ characters"
            )
        tokens[name] = token
    return tokens


class Credentials:
    def __init__(
        self,
        read: dict[str, str],
        admin: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``read``: consumer name -> token; ``admin``: may also run writing statements."""
        self._read = [(name, token.encode()) for name, token in read.items()]
        self._admin = admin.encode() if admin else None
        self._clock = clock
        self._sessions: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._lock = threading.Lock()  # the server answers on many threads

    @property
    def configured(self) -> bool:
        return bool(self._read or self._admin)

    def token(self, presented: str) -> Caller | None:
        """The caller a token belongs to; every configured token is compared, in constant time."""
        given = presented.encode()
        found = None
        for name, token in self._read:
            if hmac.compare_digest(given, token):
                found = found or Caller(name)
        if self._admin is not None and hmac.compare_digest(given, self._admin):
            found = Caller("admin", admin=True)
        return found

    def request(self, authorization: str, cookies: dict[str, str]) -> Caller | None:
        """The caller of a request, from its Authorization header or its session cookie."""
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            return self.token(value.strip())
        if scheme.lower() == "basic":
            return self.token(_basic_password(value.strip()))
        session = cookies.get(SESSION_COOKIE)
        return self.session(session) if session else None

    def open_session(self, caller: Caller) -> str:
        """A new browser session for ``caller``; the oldest go past MAX_SESSIONS."""
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session] = (caller, self._clock() + SESSION_TTL_S)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def session(self, session: str) -> Caller | None:
        with self._lock:
            entry = self._sessions.get(session)
            if entry is None:
                return None
            caller, expires = entry
            if self._clock() >= expires:
                del self._sessions[session]
                return None
            return caller


def _basic_password(value: str) -> str:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


def session_cookie(session: str) -> str:
    """The Set-Cookie value: not readable by scripts, never sent by another site."""
    return f"{SESSION_COOKIE}={session}; Max-Age={SESSION_TTL_S}; Path=/; HttpOnly; SameSite=Strict"
