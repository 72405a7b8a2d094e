"""Users from the LDAP directory: stable ids for custodians, rules by group and ledger actors.

``Directory.resolve(name)`` turns a login name or mail address into a :class:`User` whose
``id`` is the entry's stable unique id: ``entryUUID`` on OpenLDAP, ``nsUniqueId`` on
389-DS and Kolab (``[ldap] id_attribute``; any attribute will do). Names change, ids don't:
a user renamed in the directory keeps the id.

Archiving must never wait for the directory. Timeouts are short (``timeout_seconds``); when
the server cannot be reached the answer is immediately a *name-only* user (id = the
lower-cased name, ``source = "name-only"``), the name is remembered for
:meth:`Directory.backfill`, and the server is left alone for ``retry_seconds`` so that a
dead server costs one timeout, not one per message. Answers from the directory are cached
in memory and in SQLite under the vault home for ``cache_ttl_seconds``; an expired entry is
still used while the server is unreachable (the id is stable; only names and groups may be
stale). A name the directory does not know (a shared folder, a departed user) is name-only
too, cached for the TTL, and not queued for backfill.

With ``url = ""`` there is no directory: every user is name-only and nothing is queued.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ldap3 import NONE as NO_SERVER_INFO
from ldap3 import SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.operation.search import parse_filter
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from vault.model import format_time, parse_time
from vault.model import now as utc_now

log = logging.getLogger(__name__)

LDAP = "ldap"
NAME_ONLY = "name-only"
MEMBERSHIP_STYLES = ("member", "uniqueMember", "memberUid", "memberOf")


class DirectoryConfigError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    id: str
    login: str
    display_name: str
    mails: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    source: str = NAME_ONLY  # LDAP or NAME_ONLY

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> User:
        data = json.loads(text)
        return cls(**{**data, "mails": tuple(data["mails"]), "groups": tuple(data["groups"])})


def normalise_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"not a user name or address: {name!r}")
    return name.strip().lower()


def name_only(name: str) -> User:
    key = normalise_name(name)
    return User(id=key, login=key, display_name=key, source=NAME_ONLY)


@dataclass(frozen=True)
class LdapSettings:
    url: str = ""
    base_dn: str = ""
    bind_dn: str = ""
    bind_password: str = ""
    start_tls: bool = False
    user_filter: str = "(|(uid={name})(mail={name}))"
    id_attribute: str = "entryUUID"
    login_attribute: str = "uid"
    display_name_attributes: tuple[str, ...] = ("displayName", "cn")
    mail_attributes: tuple[str, ...] = ("mail",)
    group_base_dn: str = ""
    group_membership: str = "member"
    group_name_attribute: str = "cn"
    timeout_seconds: float = 2.0
    retry_seconds: float = 30.0
    cache_ttl_seconds: float = 3600.0

    def __post_init__(self):
        for key in ("display_name_attributes", "mail_attributes"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        if not self.url:
            return
        problems = []
        if "{name}" not in self.user_filter:
            problems.append("user_filter must contain {name}")
        else:
            try:
                parse_filter(self.user_filter.replace("{name}", "x"), None, False, False, None, False)
            except LDAPException as e:
                problems.append(f"user_filter {self.user_filter!r} is not an LDAP filter: {e}")
        if not self.id_attribute:
            problems.append("id_attribute is empty (OpenLDAP: entryUUID; 389-DS/Kolab: nsUniqueId)")
        if not self.base_dn:
            problems.append("base_dn is empty")
        if self.group_membership not in MEMBERSHIP_STYLES:
            problems.append(
                f"group_membership must be one of {list(MEMBERSHIP_STYLES)}, not {self.group_membership!r}"
            )
        if self.timeout_seconds <= 0:
            problems.append("timeout_seconds must be positive")
        if problems:
            raise DirectoryConfigError("[ldap] " + "; ".join(problems))


class _Unavailable(Exception):
    """The directory could not answer (down, timeout, refused bind...)."""


class _Cache:
    """Users by name (memory in front of SQLite) and the names waiting for backfill."""

    def __init__(self, path: Path | None):
        self.memory: dict[str, tuple[User, datetime]] = {}
        self.db = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
                self.db.execute(
                    "CREATE TABLE IF NOT EXISTS users "
                    "(key TEXT PRIMARY KEY, user TEXT NOT NULL, fetched_at TEXT NOT NULL)"
                )
                self.db.execute(
                    "CREATE TABLE IF NOT EXISTS pending (name TEXT PRIMARY KEY, since TEXT NOT NULL)"
                )
            except (OSError, sqlite3.Error):  # a read-only (or full) home: answers kept in memory only
                self.db = None
        self.pending_memory: dict[str, datetime] = {}

    def get(self, key: str) -> tuple[User, datetime] | None:
        if key in self.memory:
            return self.memory[key]
        if self.db is None:
            return None
        row = self.db.execute("SELECT user, fetched_at FROM users WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        try:
            found = (User.from_json(row[0]), parse_time(row[1]))
        except (ValueError, TypeError, KeyError):
            return None  # a damaged cache row is just a cache miss
        self.memory[key] = found
        return found

    def put(self, keys: set[str], user: User, when: datetime):
        for key in keys:
            self.memory[key] = (user, when)
        if self.db is not None:
            self.db.executemany(
                "INSERT OR REPLACE INTO users (key, user, fetched_at) VALUES (?, ?, ?)",
                [(k, user.to_json(), format_time(when)) for k in keys],
            )

    def add_pending(self, name: str, when: datetime):
        if self.db is None:
            self.pending_memory.setdefault(name, when)
        else:
            self.db.execute(
                "INSERT OR IGNORE INTO pending (name, since) VALUES (?, ?)", (name, format_time(when))
            )

    def remove_pending(self, name: str):
        self.pending_memory.pop(name, None)
        if self.db is not None:
            self.db.execute("DELETE FROM pending WHERE name=?", (name,))

    def pending(self) -> list[str]:
        if self.db is None:
            return sorted(self.pending_memory)
        return [r[0] for r in self.db.execute("SELECT name FROM pending ORDER BY name")]

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None


class Directory:
    def __init__(
        self, settings: LdapSettings, cache_path: Path | None = None, clock: Callable[[], datetime] = utc_now
    ):
        self.settings = settings
        self.clock = clock
        self._cache = _Cache(cache_path)
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        self._down_until: datetime | None = None

    @classmethod
    def from_config(cls, config, clock: Callable[[], datetime] = utc_now) -> Directory:
        from vault.secrets import resolved

        section = resolved(config, "ldap")
        cache_path = config.path("ldap", "cache_path")
        section.pop("cache_path", None)
        known = LdapSettings.__dataclass_fields__
        return cls(LdapSettings(**{k: v for k, v in section.items() if k in known}), cache_path, clock)

    # ------------------------------------------------------------ public

    @property
    def configured(self) -> bool:
        return bool(self.settings.url)

    def resolve(self, name_or_address: str) -> User:
        """The user behind a login or address; never raises for an unreachable server."""
        key = normalise_name(name_or_address)
        with self._lock:
            cached = self._cache.get(key)
            now = self.clock()
            if cached and now - cached[1] < timedelta(seconds=self.settings.cache_ttl_seconds):
                return cached[0]
            if not self.configured:
                return name_only(key)
            if self._down_until is None or now >= self._down_until:
                try:
                    return self._lookup_and_cache(key)
                except _Unavailable:
                    pass
            if cached and cached[0].source == LDAP:
                return cached[0]  # stale but with a real id: better than name-only
            self._cache.add_pending(key, now)
            return name_only(key)

    def pending_backfill(self) -> list[str]:
        """Names answered name-only because the directory was unreachable."""
        with self._lock:
            return self._cache.pending()

    def backfill(self) -> dict[str, str]:
        """Re-resolve the pending names now (ignoring the retry pause); name -> id for each
        name the directory knows. Names it does not know leave the queue; if the server is
        still unreachable, the queue stays as it is."""
        mapping = {}
        with self._lock:
            for key in self._cache.pending():
                try:
                    user = self._lookup_and_cache(key)
                except _Unavailable:
                    break
                self._cache.remove_pending(key)
                if user.source == LDAP:
                    mapping[key] = user.id
        return mapping

    def authenticate(self, name: str, password: str) -> User | None:
        """The user ``name`` (a login or an address) if ``password`` is theirs: an LDAP bind as
        the one entry ``user_filter`` finds for it, with that password (the web service's
        login). None when no single entry matches or the bind fails. An empty password is
        refused before the server sees it: a simple bind with a DN and no password is an
        unauthenticated bind, which servers accept (RFC 4513 5.1.2). Raises LDAPException when
        the directory cannot be reached (the caller says so; it is not a wrong password)."""
        if not self.configured or not password:
            return None
        key = normalise_name(name)
        s = self.settings
        search_filter = s.user_filter.replace("{name}", escape_filter_chars(key))
        with self._lock:
            try:
                entries = self._search(s.base_dn, search_filter, [s.login_attribute])
            except LDAPException:
                self._disconnect()
                raise
        if len(entries) != 1:
            return None
        server = Server(s.url, connect_timeout=s.timeout_seconds, get_info=NO_SERVER_INFO)
        conn = Connection(
            server,
            user=entries[0]["dn"],
            password=password,
            receive_timeout=max(1, math.ceil(s.timeout_seconds)),
            read_only=True,
        )
        try:
            conn.open()
            if s.start_tls:
                conn.start_tls()
            bound = conn.bind()
        finally:
            try:
                conn.unbind()
            except LDAPException:
                pass
        if not bound:
            return None
        with self._lock:  # fresh groups and names at login, not the cache's
            try:
                user = self._lookup_and_cache(key)
            except _Unavailable:
                return None
        return user if user.source == LDAP else None

    def close(self):
        with self._lock:
            self._disconnect()
            self._cache.close()

    # ------------------------------------------------------------ LDAP

    def _lookup_and_cache(self, key: str) -> User:
        try:
            user = self._lookup(key)
        except Exception as e:  # noqa: BLE001 - whatever breaks, ingest goes on with names
            self._disconnect()
            self._down_until = self.clock() + timedelta(seconds=self.settings.retry_seconds)
            log.warning(
                "directory %s unavailable (%s: %s); using names only until %s",
                self.settings.url,
                type(e).__name__,
                e,
                format_time(self._down_until),
                exc_info=not isinstance(e, LDAPException),
            )
            raise _Unavailable() from e
        self._down_until = None
        now = self.clock()
        if user is None:
            user = name_only(key)
            self._cache.put({key}, user, now)
        else:
            aliases = {key, user.login.lower(), *(m.lower() for m in user.mails)}
            self._cache.put(aliases, user, now)
        self._cache.remove_pending(key)
        return user

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            s = self.settings
            server = Server(s.url, connect_timeout=s.timeout_seconds, get_info=NO_SERVER_INFO)
            conn = Connection(
                server,
                user=s.bind_dn or None,
                password=s.bind_password or None,
                # ldap3 packs this into SO_RCVTIMEO as whole seconds
                receive_timeout=max(1, math.ceil(s.timeout_seconds)),
                raise_exceptions=True,
                read_only=True,
            )
            conn.open()
            if s.start_tls:
                conn.start_tls()
            conn.bind()
            self._conn = conn
        return self._conn

    def _disconnect(self):
        if self._conn is not None:
            try:
                self._conn.unbind()
            except Exception:  # noqa: BLE001 - the connection is being dropped anyway
                pass
            self._conn = None

    def _search(self, base: str, search_filter: str, attributes: list[str]) -> list[dict]:
        conn = self._connection()
        conn.search(base, search_filter, SUBTREE, attributes=attributes)
        response = conn.response
        if response is None:  # set by every search that completed (failures raise)
            raise LDAPException(f"search of {base} returned no response")
        return [
            {"dn": r["dn"], "attrs": _lower_keys(r.get("raw_attributes", {}))}
            for r in response
            if r.get("type") == "searchResEntry"
        ]

    def _lookup(self, key: str) -> User | None:
        s = self.settings
        wanted = [s.id_attribute, s.login_attribute, *s.display_name_attributes, *s.mail_attributes]
        if s.group_membership == "memberOf":
            wanted.append("memberOf")
        search_filter = s.user_filter.replace("{name}", escape_filter_chars(key))
        entries = self._search(s.base_dn, search_filter, wanted)
        if len(entries) > 1:
            log.warning(
                "directory: %r matches %d entries (%s); treating it as unknown",
                key,
                len(entries),
                ", ".join(e["dn"] for e in entries),
            )
            return None
        if not entries:
            return None
        entry = entries[0]
        attrs = entry["attrs"]
        ids = attrs.get(s.id_attribute.lower())
        if not ids:
            log.error(
                "directory: entry %s has no %s attribute (check [ldap] id_attribute); using the name",
                entry["dn"],
                s.id_attribute,
            )
            return None
        login = _first(attrs, [s.login_attribute]) or key
        mails = sorted(
            {m.lower(): m for a in s.mail_attributes for m in attrs.get(a.lower(), [])}.values(),
            key=str.lower,
        )
        return User(
            id=ids[0],
            login=login,
            display_name=_first(attrs, s.display_name_attributes) or login,
            mails=tuple(mails),
            groups=tuple(self._groups(entry["dn"], login, attrs)),
            source=LDAP,
        )

    def _groups(self, dn: str, login: str, attrs: dict[str, list[str]]) -> list[str]:
        s = self.settings
        if s.group_membership == "memberOf":
            names = []
            for group_dn in attrs.get("memberof", []):
                try:
                    rdn_attr, rdn_value, _ = parse_dn(group_dn)[0]
                except (LDAPException, IndexError):
                    continue
                names.append(rdn_value)
            return sorted(set(names), key=str.lower)
        member = login if s.group_membership == "memberUid" else dn
        search_filter = f"({s.group_membership}={escape_filter_chars(member)})"
        groups = self._search(s.group_base_dn or s.base_dn, search_filter, [s.group_name_attribute])
        found = {_first(g["attrs"], [s.group_name_attribute]) for g in groups}
        return sorted((n for n in found if n), key=str.lower)


def _lower_keys(raw: dict[str, Any]) -> dict[str, list[str]]:
    """Attribute values as text, keyed by lower-cased name (LDAP names are case-insensitive)."""
    out: dict[str, list[str]] = {}
    for name, values in raw.items():
        if isinstance(values, (bytes, str)):
            values = [values]
        out.setdefault(name.lower(), []).extend(
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values
        )
    return out


def _first(attrs: dict[str, list[str]], names) -> str | None:
    for name in names:
        values = attrs.get(name.lower())
        if values:
            return values[0]
    return None
