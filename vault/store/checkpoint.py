"""C2SP tlog-checkpoints in C2SP signed notes, signed with Ed25519.

Standalone (hashlib + cryptography) so an export can be checked offline.
Body: ``<origin>\\n<tree size>\\n<base64 root>\\n``; signature line:
``— <key name> <base64(4-byte key id || signature)>``; key id = SHA-256(name || "\\n" || 0x01 ||
public key)[:4]; verifier key string ``<name>+<hex key id>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = b"\x01"
DASH = "\u2014"


class CheckpointError(Exception):
    pass


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: str  # hex
    note: bytes


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def _public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verifier_key(name: str, public: Ed25519PublicKey) -> str:
    raw = _public_raw(public)
    return f"{name}+{key_id(name, raw).hex()}+{base64.b64encode(ED25519 + raw).decode()}"


def load_or_create_key(path: Path, name: str, create: bool) -> Ed25519PrivateKey:
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as e:
            raise CheckpointError(f"{path}: not a PEM private key ({e})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError(f"{path}: not an Ed25519 key")
        return key
    if not create:
        raise CheckpointError(f"signing key {path} missing")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    Path(str(path) + ".pub").write_text(verifier_key(name, key.public_key()) + "\n")
    return key


def body(origin: str, size: int, root: bytes) -> bytes:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n".encode()


def sign(origin: str, size: int, root: bytes, key: Ed25519PrivateKey, name: str) -> Checkpoint:
    text = body(origin, size, root)
    sig = key.sign(text)
    kid = key_id(name, _public_raw(key.public_key()))
    note = text + f"\n{DASH} {name} {base64.b64encode(kid + sig).decode()}\n".encode()
    return Checkpoint(origin, size, root.hex(), note)


def parse_verifier_key(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    try:
        name, kid_hex, b64 = vkey.strip().split("+", 2)
        raw = base64.b64decode(b64, validate=True)
        if raw[:1] != ED25519 or len(raw) != 33:
            raise ValueError("not an Ed25519 key")
        kid = bytes.fromhex(kid_hex)
        if kid != key_id(name, raw[1:]):
            raise ValueError("key id does not match the key")
        return name, kid, Ed25519PublicKey.from_public_bytes(raw[1:])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"bad verifier key: {e}") from None


def verify_checkpoint_note(note: bytes, vkey: str) -> Checkpoint:
    """The checkpoint a note signs, if ``vkey`` signed it; CheckpointError otherwise."""
    name, kid, public = parse_verifier_key(vkey)
    try:
        text, sep, sigs = note.decode("utf-8").partition("\n\n")
    except UnicodeDecodeError:
        raise CheckpointError("checkpoint is not UTF-8") from None
    if not sep:
        raise CheckpointError("checkpoint has no signature block")
    text_bytes = (text + "\n").encode()
    for line in sigs.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH or parts[1] != name:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except ValueError:
            continue
        if blob[:4] != kid:
            continue
        try:
            public.verify(blob[4:], text_bytes)
        except InvalidSignature:
            raise CheckpointError("signature does not verify") from None
        lines = text.split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint body too short")
        try:
            size = int(lines[1])
            root = base64.b64decode(lines[2], validate=True)
        except ValueError as e:
            raise CheckpointError(f"bad checkpoint body: {e}") from None
        return Checkpoint(lines[0], size, root.hex(), note)
    raise CheckpointError(f"no signature by {name}")
