"""API users of the web service: the clients (a Roundcube with libkolab, say) that call
Bonnie's JSON-RPC API, each with a password (HTTP Basic) and a secret (the HMAC key of
``X-Request-Sign``).

They live in one JSON file in the home (``[web] api_users_path``), mode 0600, written whole
(temporary file, fsync, rename), never in the ledger or the config. Passwords are kept as
scrypt hashes; the secret cannot be: verifying an HMAC needs the key itself, so it is stored
as given and the file's mode is what protects it. ``vaultctl api-user add`` prints both once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from vault.durable import write_file
from vault.model import format_time, now

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class ApiUserError(ValueError):
    pass


@dataclass(frozen=True)
class ApiUser:
    name: str
    secret: str
    created: str


def _hash(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _hash(password, salt, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        return hmac.compare_digest(_hash(password, bytes.fromhex(salt), int(n), int(r), int(p)).hex(), digest)
    except ValueError:
        return False


class ApiUsers:
    """The API users file; re-read when it changes (the CLI edits it while the service runs)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, dict] = {}
        self._verified: set[tuple[str, str, str]] = set()  # (name, sha256 of password, hash)

    @classmethod
    def from_config(cls, config) -> ApiUsers:
        return cls(config.path("web", "api_users_path"))

    def _load(self) -> dict[str, dict]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._users = None, {}
            return self._users
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._users = data.get("users", {}) if isinstance(data, dict) else {}
            self._stamp = stamp
        return self._users

    def _save(self, users: dict[str, dict]) -> None:
        write_file(self.path, json.dumps({"version": 1, "users": users}, indent=1, sort_keys=True).encode())
        self._stamp = None

    def names(self) -> list[dict]:
        """name and created time of each API user (never a secret)."""
        return [{"name": n, "created": u.get("created")} for n, u in sorted(self._load().items())]

    def add(self, name: str, password: str | None = None, secret: str | None = None) -> tuple[str, str]:
        """A new API user; a password or secret not given is generated. Returns both."""
        if not _NAME.match(name):
            raise ApiUserError(f"{name!r} is not an API user name (letters, digits, . _ @ -; at most 64)")
        users = dict(self._load())
        if name in users:
            raise ApiUserError(f"API user {name!r} exists: remove it first to change its password or secret")
        password = password or secrets.token_urlsafe(24)
        secret = secret or secrets.token_hex(32)
        if len(secret) < 16:
            raise ApiUserError("a secret of fewer than 16 characters is too easy to guess")
        users[name] = {"password": hash_password(password), "secret": secret, "created": format_time(now())}
        self._save(users)
        return password, secret

    def remove(self, name: str) -> bool:
        users = dict(self._load())
        if users.pop(name, None) is None:
            return False
        self._save(users)
        return True

    def authenticate(self, name: str, password: str) -> ApiUser | None:
        """The API user whose name and password these are, or None."""
        entry = self._load().get(name)
        if entry is None:
            return None
        stored = entry.get("password", "")
        key = (name, hashlib.sha256(password.encode()).hexdigest(), stored)
        if key not in self._verified:
            if not password_matches(password, stored):
                return None
            self._verified.add(key)  # scrypt once per process, not once per request
        return ApiUser(name, entry["secret"], entry.get("created", ""))


def signature(secret: str, user: str, body: bytes) -> str:
    """``X-Request-Sign``: hex HMAC-SHA256 under the API user's secret of ``<user>:<raw body>``."""
    return hmac.new(secret.encode(), user.encode() + b":" + body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, user: str, body: bytes, sent: str) -> bool:
    return hmac.compare_digest(signature(secret, user, body), sent.strip().lower())
