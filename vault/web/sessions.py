"""The web pages' sessions, their CSRF tokens, and the throttle of failed logins.

A session is server-side: the browser holds only its id, 256 random bits in a cookie that is
HttpOnly, SameSite=Strict and, over TLS, Secure (named ``__Host-vault``: the browser then
refuses it from plain HTTP or another path). The store is this process's memory: a restart
ends every session, and nothing of a session (nor any password) is ever written to disk.
A session holds the caller made at login, but not their roles for good: each request takes
the roles ``[roles]`` gives now (reloaded by SIGHUP) from the caller's directory groups, read
again when they are older than ``GROUPS_TTL`` seconds (vault/web/auth.py). Each session
carries a synchronizer token that every state-changing form posts back
(``csrf``); the login form, posted before any session exists, carries a token bound to a
short-lived pre-login cookie instead. A login replaces any earlier session (no fixation).

Failed logins are counted per name and per client address within a window; past the limit
(``[web] login_attempts`` per name, four times as many per address), further attempts are
refused (429) until the window has moved on, whether or not the password would have been
right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "vault"
TLS_COOKIE = "__Host-vault"
LOGIN_COOKIE = "vault-login"
GROUPS_TTL = 60.0  # seconds a session's directory groups are trusted before they are read again


def cookie_name(tls: bool) -> str:
    return TLS_COOKIE if tls else COOKIE


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


@dataclass
class Session:
    id: str
    login: str
    caller: object  # vault.identity.Caller: its roles re-checked at each request (auth.py)
    display_name: str
    csrf: str
    created: float
    last_seen: float
    data: dict = field(default_factory=dict)
    groups_read: float = 0.0  # when the caller's directory groups were last read


class SessionStore:
    """Sessions in memory, each ending after ``idle`` seconds unused or ``lifetime`` at most."""

    def __init__(self, idle: float, lifetime: float, clock: Callable[[], float] = time.monotonic):
        self.idle, self.lifetime, self.clock = idle, lifetime, clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, login: str, caller: object, display_name: str) -> Session:
        now = self.clock()
        session = Session(new_token(), login, caller, display_name, new_token(), now, now, groups_read=now)
        with self._lock:
            self._expire(now)
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > self.idle or now - session.created > self.lifetime:
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._sessions)

    def _expire(self, now: float) -> None:
        dead = [
            k
            for k, s in self._sessions.items()
            if now - s.last_seen > self.idle or now - s.created > self.lifetime
        ]
        for k in dead:
            del self._sessions[k]


class LoginTokens:
    """The login form's CSRF token: an HMAC, under a key of this process, of a random
    pre-login cookie; the form must post back the token of the cookie it came with."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def token(self, cookie: str) -> str:
        return hmac.new(self._key, cookie.encode(), hashlib.sha256).hexdigest()

    def valid(self, cookie: str | None, token: str | None) -> bool:
        return bool(cookie) and tokens_match(self.token(cookie or ""), token)


class LoginThrottle:
    """At most ``attempts`` failed logins per name, and ``ADDRESS_FACTOR`` times as many per
    client address (many people may share one: a NAT, a proxy), per ``window`` seconds."""

    ADDRESS_FACTOR = 4

    def __init__(self, attempts: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.attempts, self.window, self.clock = attempts, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, name: str, address: str) -> bool:
        now = self.clock()
        with self._lock:
            return (
                len(self._recent(f"name:{name.lower()}", now)) >= self.attempts
                or len(self._recent(f"addr:{address}", now)) >= self.attempts * self.ADDRESS_FACTOR
            )

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"name:{name.lower()}", f"addr:{address}"):
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # bounded memory under a flood of names
                for k in [k for k, v in self._failures.items() if not v]:
                    del self._failures[k]

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(f"name:{name.lower()}", None)
