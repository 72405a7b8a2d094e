"""The store's master key: made by ``init``, unwrapped on every open, rewrapped, exported.

The key hierarchy (docs/architecture.md 4.1), as restic and borg have it:

- the **master key** is 64 random bytes: a 32-byte **data key** (AES-256-GCM, every object
  and record, vault/store/crypto.py) and a 32-byte **id key** (HMAC-SHA256 names of packs, so
  no object name is a hash anyone else can compute); its *key id* is
  ``HMAC-SHA256(id key, "vault key id")[:8]`` in hex, safe to show;
- it lives in the **key file** ``[store] key_path`` (``keys/store.key``, 0600), JSON:
  ``{"vault_store_key": 1, "mode", "cipher", "key_id", "created", ...}`` and either
  ``"key"`` (the master key in base64: mode ``keyfile``, the file *is* the secret) or
  ``"kdf"`` + ``"wrapped"`` (mode ``passphrase``: the master key sealed with AES-256-GCM under
  ``scrypt(passphrase, salt, n, r, p)``, memory-hard: n = 2^15, r = 8 -> 32 MiB);
- the store holds a **check object** ``config``: an envelope sealed with the data key whose
  plaintext names the cipher and the key id. Every open unwraps the key (no key file, or a
  wrong passphrase, is refused there); the first read or write of the store authenticates
  the check object, so another store's key is refused before any pack, index or message is
  read, and commands that never touch the store do not need it reachable.

The passphrase is a secret (vault/secrets.py): ``$VAULT_STORE_PASSPHRASE``, the file
``$VAULT_STORE_PASSPHRASE_FILE`` or ``[store] passphrase_file`` names, ``[store] passphrase``;
the CLI asks on a terminal when none is given (vault/cli/common.py). Changing it rewrites
the key file only; no data object changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vault.durable import write_file
from vault.model import Refused
from vault.store.backends.base import Backend, ObjectMissing, StoreError
from vault.store.crypto import (
    CIPHER_NAME,
    AuthenticationFailed,
    Cipher,
    EnvelopeError,
    PlainCipher,
    SealedCipher,
)

MODES = ("keyfile", "passphrase", "none")
FORMAT = 1
CHECK_OBJECT = "config"  # the store's check object (its key: the backend's root)
SCRYPT = {"n": 2**15, "r": 8, "p": 1}
PASSPHRASE_ENV = "VAULT_STORE_PASSPHRASE"  # as vault/secrets.py SECRETS names it
PAPER_HEADER = "vault store key, paper backup v1"
_WRAP_AD = b"vault store key v1"


class KeyRefused(StoreError, Refused):
    """No key, the wrong key, or the wrong (or no) passphrase: nothing of the store is read."""


@dataclass(frozen=True)
class MasterKey:
    data_key: bytes
    id_key: bytes

    @classmethod
    def new(cls) -> MasterKey:
        return cls(os.urandom(32), os.urandom(32))

    @classmethod
    def from_bytes(cls, raw: bytes) -> MasterKey:
        if len(raw) != 64:
            raise KeyRefused(f"a store master key is 64 bytes, not {len(raw)}")
        return cls(raw[:32], raw[32:])

    def to_bytes(self) -> bytes:
        return self.data_key + self.id_key

    @property
    def key_id(self) -> str:
        return hmac.new(self.id_key, b"vault key id", hashlib.sha256).hexdigest()[:16]

    def cipher(self) -> SealedCipher:
        return SealedCipher(self.data_key, self.id_key)


# ------------------------------------------------------------ the passphrase


def passphrase(config) -> str:
    """The store passphrase from wherever vault/secrets.py finds it; "" when none is given."""
    from vault.secrets import secret

    return secret(config, "store", "passphrase")


def _kek(phrase: str, kdf: dict) -> bytes:
    try:
        salt = base64.b64decode(kdf["salt"], validate=True)
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(phrase.encode())
    except (KeyError, TypeError, ValueError) as e:
        raise KeyRefused(f"the key file's scrypt parameters are unusable ({e})") from None


def _wrap(master: MasterKey, phrase: str) -> dict:
    if not phrase:
        raise KeyRefused("an empty passphrase protects nothing: give one")
    kdf = {"name": "scrypt", **SCRYPT, "salt": base64.b64encode(os.urandom(16)).decode()}
    nonce = os.urandom(12)
    wrapped = nonce + AESGCM(_kek(phrase, kdf)).encrypt(nonce, master.to_bytes(), _WRAP_AD)
    return {"kdf": kdf, "wrapped": base64.b64encode(wrapped).decode()}


# ------------------------------------------------------------ the key file


def key_document(master: MasterKey, mode: str, phrase: str = "") -> dict:
    doc = {
        "vault_store_key": FORMAT,
        "mode": mode,
        "cipher": CIPHER_NAME,
        "key_id": master.key_id,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if mode == "passphrase":
        doc.update(_wrap(master, phrase))
    elif mode == "keyfile":
        doc["key"] = base64.b64encode(master.to_bytes()).decode()
    else:
        raise KeyRefused(f"unknown key mode {mode!r} (keyfile or passphrase)")
    return doc


def parse_document(text: str, where: str) -> dict:
    """A key file's JSON, or its paper form; checked for shape, not yet unwrapped."""
    text = text.strip()
    if text.startswith(PAPER_HEADER):
        text = _from_paper(text, where)
    try:
        doc = json.loads(text)
    except ValueError:
        raise KeyRefused(f"{where}: not a vault store key file") from None
    if not isinstance(doc, dict) or doc.get("vault_store_key") != FORMAT or doc.get("mode") not in MODES[:2]:
        raise KeyRefused(f"{where}: not a vault store key file of version {FORMAT}")
    return doc


def unwrap(doc: dict, phrase: str, where: str) -> MasterKey:
    """The master key in a key document (the passphrase is needed in passphrase mode)."""
    try:
        if doc["mode"] == "keyfile":
            master = MasterKey.from_bytes(base64.b64decode(doc["key"], validate=True))
        else:
            if not phrase:
                raise KeyRefused(
                    f"the store key {where} is protected by a passphrase and none was given: set "
                    "$VAULT_STORE_PASSPHRASE or [store] passphrase_file, or run on a terminal"
                )
            wrapped = base64.b64decode(doc["wrapped"], validate=True)
            try:
                raw = AESGCM(_kek(phrase, doc["kdf"])).decrypt(wrapped[:12], wrapped[12:], _WRAP_AD)
            except InvalidTag:
                raise KeyRefused(f"wrong passphrase for the store key {where}") from None
            master = MasterKey.from_bytes(raw)
    except (KeyError, TypeError, ValueError) as e:
        raise KeyRefused(f"{where}: damaged store key file ({e})") from None
    if doc.get("key_id") != master.key_id:
        raise KeyRefused(f"{where}: damaged store key file (its key id does not match its key)")
    return master


def key_path(config) -> Path:
    return config.path("store", "key_path")


def read_document(config) -> dict:
    path = key_path(config)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyRefused(
            f"the store is encrypted ([store] encryption = {config['store']['encryption']}) but its key "
            f"file {path} is missing: put back the key from your backup ('vaultctl key import FILE')"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise KeyRefused(f"cannot read the store key {path}: {e}") from None
    return parse_document(text, str(path))


def load(config) -> MasterKey:
    """The home's master key, unwrapped (KeyRefused when it cannot be)."""
    return unwrap(read_document(config), passphrase(config), str(key_path(config)))


def write_document(path: Path, doc: dict, *, replace: bool = False) -> None:
    """The key file, 0600 from its first byte; ``replace``: atomically over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_file(path, (json.dumps(doc, indent=1) + "\n").encode(), exclusive=not replace)
    except FileExistsError:
        raise KeyRefused(f"{path} exists: refusing to overwrite a store key") from None


# ------------------------------------------------------------ the store's check object


def _check_plaintext(master: MasterKey) -> bytes:
    return json.dumps({"vault_store": FORMAT, "cipher": CIPHER_NAME, "key_id": master.key_id}).encode()


def verify_against(master: MasterKey, backend: Backend, where: str) -> None:
    """Refuse a key the store's check object does not authenticate with."""
    try:
        data = backend.get(CHECK_OBJECT)
    except ObjectMissing:
        raise KeyRefused(
            f"{backend.name} has no '{CHECK_OBJECT}' object: it is not an encrypted vault store "
            "(or it was damaged); nothing read"
        ) from None
    try:
        json.loads(master.cipher().open_object(CHECK_OBJECT, data))
    except (AuthenticationFailed, EnvelopeError, ValueError):
        raise KeyRefused(
            f"the store key {where} (key id {master.key_id}) is not the key of {backend.name}: "
            "refused before anything was read"
        ) from None


def new_key(config) -> dict:
    """A new key document for ``[store] encryption`` (None for ``none``); refuses before the
    home is made when the passphrase it needs is not given."""
    mode = config["store"]["encryption"]
    if mode not in MODES:
        raise KeyRefused(f"[store] encryption must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        return {}
    phrase = passphrase(config) if mode == "passphrase" else ""
    if mode == "passphrase" and not phrase:
        raise KeyRefused(
            "--encryption passphrase needs a passphrase: set $VAULT_STORE_PASSPHRASE or "
            "[store] passphrase_file, or run on a terminal"
        )
    return key_document(MasterKey.new(), mode, phrase)


def install(config, doc: dict) -> None:
    """Write the new key file (init). The store gets its check object from its first writer
    (``cipher_for``); a store that already has another key's is refused on first use."""
    if doc:
        unwrap(doc, passphrase(config), "(new)")
        write_document(key_path(config), doc)


def put_check(master: MasterKey, backend: Backend) -> None:
    backend.put(CHECK_OBJECT, master.cipher().seal_object(CHECK_OBJECT, _check_plaintext(master)))


def cipher_for(config, backend: Backend, *, read_only: bool = False) -> Cipher:
    """The cipher for this home's store: its key unwrapped now (a missing key file or a wrong
    passphrase is refused here), checked against the store's check object before the cipher's
    first use (store/crypto.py ``check_first``), so before anything of the store is read."""
    mode = config["store"]["encryption"]
    if mode not in MODES:
        raise KeyRefused(f"[store] encryption must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        plain = PlainCipher()
        plain.check_first(lambda: _refuse_encrypted(backend))
        return plain
    master = load(config)
    sealed = master.cipher()
    sealed.check_first(lambda: _check_store(master, backend, str(key_path(config)), read_only))
    return sealed


def _refuse_encrypted(backend: Backend) -> None:
    if backend.exists(CHECK_OBJECT):
        raise KeyRefused(
            f"{backend.name} is an encrypted store, but [store] encryption = none: set it to "
            "keyfile (or passphrase) and put the key at [store] key_path"
        )


def _check_store(master: MasterKey, backend: Backend, where: str, read_only: bool) -> None:
    if not backend.exists(CHECK_OBJECT) and next(iter(backend.list("packs/")), None) is None:
        # a store not written yet (a bucket configured after init): this key is its key
        if not read_only:
            put_check(master, backend)
        return
    verify_against(master, backend, where)


# ------------------------------------------------------------ change, export, import


def change_passphrase(config, old: str, new: str) -> dict:
    """Rewrap the master key under a new passphrase; no store object changes."""
    doc = read_document(config)
    if doc["mode"] != "passphrase":
        raise KeyRefused(f"the store key {key_path(config)} has no passphrase (mode {doc['mode']})")
    master = unwrap(doc, old, str(key_path(config)))
    new_doc = {**doc, **_wrap(master, new)}
    write_document(key_path(config), new_doc, replace=True)
    return {"key_id": master.key_id, "path": str(key_path(config))}


def export_text(config, paper: bool = False) -> str:
    """The key file as it is (wrapped when it has a passphrase), or its paper form."""
    doc = read_document(config)
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    return _to_paper(text) if paper else json.dumps(doc, indent=1) + "\n"


def import_key(config, text: str, where: str, backend: Backend) -> dict:
    """Install an exported key as this home's key file, after checking it opens the store."""
    doc = parse_document(text, where)
    master = unwrap(doc, passphrase(config), where)
    verify_against(master, backend, where)
    path = key_path(config)
    if path.exists():
        try:
            existing = read_document(config).get("key_id")
        except KeyRefused:
            existing = None  # a damaged key file: the import is what repairs it
        if existing not in (None, master.key_id):
            raise KeyRefused(f"{path} holds another key ({existing}): move it away first")
    write_document(path, doc, replace=True)
    return {"key_id": master.key_id, "mode": doc["mode"], "path": str(path)}


def describe(config) -> dict:
    """What ``vaultctl key show`` prints: never the key."""
    mode = config["store"]["encryption"]
    out: dict = {"encryption": mode, "key_path": str(key_path(config))}
    if mode == "none":
        return out
    doc = read_document(config)
    out.update({k: doc.get(k) for k in ("mode", "cipher", "key_id", "created")})
    if doc["mode"] == "passphrase":
        out["kdf"] = {k: v for k, v in doc["kdf"].items() if k != "salt"}
    return out


def _to_paper(text: str) -> str:
    body = base64.b32encode(text.encode()).decode().rstrip("=")
    lines = [PAPER_HEADER]
    for i in range(0, len(body), 40):
        chunk = body[i : i + 40]
        groups = " ".join(chunk[j : j + 5] for j in range(0, len(chunk), 5))
        lines.append(f"{i // 40 + 1:03d} {groups} {hashlib.sha256(chunk.encode()).hexdigest()[:4]}")
    lines.append(f"end {hashlib.sha256(body.encode()).hexdigest()[:16]}")
    return "\n".join(lines) + "\n"


def _from_paper(text: str, where: str) -> str:
    """The JSON a paper backup carries; a mistyped line is named."""
    lines = [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]
    if not lines or not lines[-1].startswith("end "):
        raise KeyRefused(f"{where}: the paper key has no 'end' line")
    body = ""
    for n, line in enumerate(lines[:-1], 1):
        parts = line.split()
        if len(parts) < 3 or parts[0] != f"{n:03d}":
            raise KeyRefused(f"{where}: paper key line {n} is out of order or incomplete")
        chunk = "".join(parts[1:-1]).upper()
        if hashlib.sha256(chunk.encode()).hexdigest()[:4] != parts[-1].lower():
            raise KeyRefused(f"{where}: paper key line {n} is mistyped (its check does not match)")
        body += chunk
    if hashlib.sha256(body.encode()).hexdigest()[:16] != lines[-1].split()[-1].lower():
        raise KeyRefused(f"{where}: the paper key's lines do not add up (a line missing?)")
    try:
        return base64.b32decode(body + "=" * (-len(body) % 8)).decode()
    except (ValueError, UnicodeDecodeError):
        raise KeyRefused(f"{where}: the paper key does not decode") from None
