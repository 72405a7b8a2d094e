"""C2SP tlog-checkpoints in C2SP signed notes, signed with Ed25519.

Standalone (hashlib + cryptography) so an export can be checked offline.
Body: ``<origin>\\n<tree size>\\n<base64 root>\\n``; signature line:
``— <key name> <base64(4-byte key id || signature)>``; key id = SHA-256(name || "\\n" || 0x01 ||
public key)[:4]; verifier key string ``<name>+<hex key id>+<base64(0x01 || public key)>``.

Cosignatures (C2SP tlog-cosignature, Ed25519 ``cosignature/v1``) are note signature lines by a
witness: key id = SHA-256(name || "\\n" || 0x04 || public key)[:4], signature = 8-byte big-endian
timestamp || Ed25519 over ``cosignature/v1\\ntime <timestamp>\\n`` + the checkpoint body; the
cosigner's verifier key is ``<name>+<hex key id>+<base64(0x04 || public key)>``.
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
COSIGNATURE_V1 = b"\x04"  # C2SP tlog-cosignature, Ed25519
DASH = "\u2014"


class CheckpointError(Exception):
    pass


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: str  # hex
    note: bytes


def key_id(name: str, public: bytes, kind: bytes = ED25519) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + kind + public).digest()[:4]


def _public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verifier_key(name: str, public: Ed25519PublicKey, kind: bytes = ED25519) -> str:
    raw = _public_raw(public)
    return f"{name}+{key_id(name, raw, kind).hex()}+{base64.b64encode(kind + raw).decode()}"


def cosigner_key(name: str, public: Ed25519PublicKey) -> str:
    """The verifier key of a witness's cosignatures (signature type 0x04)."""
    return verifier_key(name, public, COSIGNATURE_V1)


def load_or_create_key(path: Path, name: str, create: bool, kind: bytes = ED25519) -> Ed25519PrivateKey:
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
    Path(str(path) + ".pub").write_text(verifier_key(name, key.public_key(), kind) + "\n")
    return key


def body(origin: str, size: int, root: bytes) -> bytes:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n".encode()


def sign(origin: str, size: int, root: bytes, key: Ed25519PrivateKey, name: str) -> Checkpoint:
    text = body(origin, size, root)
    sig = key.sign(text)
    kid = key_id(name, _public_raw(key.public_key()))
    note = text + f"\n{DASH} {name} {base64.b64encode(kid + sig).decode()}\n".encode()
    return Checkpoint(origin, size, root.hex(), note)


def parse_verifier_key(vkey: str, kind: bytes = ED25519) -> tuple[str, bytes, Ed25519PublicKey]:
    try:
        name, kid_hex, b64 = vkey.strip().split("+", 2)
        raw = base64.b64decode(b64, validate=True)
        if raw[:1] != kind or len(raw) != 33:
            what = "an Ed25519 checkpoint key" if kind == ED25519 else "an Ed25519 cosignature (0x04) key"
            raise ValueError(f"not {what}")
        kid = bytes.fromhex(kid_hex)
        if kid != key_id(name, raw[1:], kind):
            raise ValueError("key id does not match the key")
        return name, kid, Ed25519PublicKey.from_public_bytes(raw[1:])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"bad verifier key: {e}") from None


def _signatures_by(sigs, name: str, kid: bytes):
    """The decoded signature blobs among a note's signature lines that name ``name`` and
    start with key id ``kid`` (lines that do not decode are skipped)."""
    for line in sigs:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH or parts[1] != name:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except ValueError:
            continue
        if blob[:4] == kid:
            yield blob


def verify_checkpoint_note(note: bytes, vkey: str) -> Checkpoint:
    """The checkpoint a note signs, if ``vkey`` signed it; CheckpointError otherwise."""
    name, kid, public = parse_verifier_key(vkey)
    text_bytes, sigs = split_note(note)
    for blob in _signatures_by(sigs, name, kid):
        try:
            public.verify(blob[4:], text_bytes)
        except InvalidSignature:
            raise CheckpointError("signature does not verify") from None
        origin, size, root = parse_body(text_bytes)
        return Checkpoint(origin, size, root.hex(), note)
    raise CheckpointError(f"no signature by {name}")


def split_note(note: bytes) -> tuple[bytes, list[str]]:
    """A signed note's body (with its final newline) and its signature lines."""
    try:
        text, sep, sigs = note.decode("utf-8").partition("\n\n")
    except UnicodeDecodeError:
        raise CheckpointError("checkpoint is not UTF-8") from None
    if not sep:
        raise CheckpointError("checkpoint has no signature block")
    return (text + "\n").encode(), sigs.splitlines()


def parse_body(text: bytes) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint body."""
    lines = text.decode("utf-8").split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint body too short")
    try:
        size = int(lines[1])
        root = base64.b64decode(lines[2], validate=True)
    except ValueError as e:
        raise CheckpointError(f"bad checkpoint body: {e}") from None
    if size < 0 or len(root) != 32 or lines[1] != str(size):
        raise CheckpointError("bad checkpoint body: size or root hash malformed")
    return lines[0], size, root


def _cosigned_message(text: bytes, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + text


def cosign(note: bytes, key: Ed25519PrivateKey, name: str, timestamp: int) -> str:
    """A witness's cosignature line (with its newline) on the checkpoint ``note`` signs."""
    text, _ = split_note(note)
    if not 0 <= timestamp < 1 << 63:
        raise CheckpointError(f"cosignature timestamp {timestamp} out of range")
    sig = key.sign(_cosigned_message(text, timestamp))
    kid = key_id(name, _public_raw(key.public_key()), COSIGNATURE_V1)
    blob = kid + timestamp.to_bytes(8, "big") + sig
    return f"{DASH} {name} {base64.b64encode(blob).decode()}\n"


def verify_cosignature(note: bytes, vkey: str) -> tuple[Checkpoint, int]:
    """The checkpoint ``note`` carries and the time of its cosignature by the witness
    ``vkey`` names; CheckpointError when there is none or it does not verify. The log's own
    signature is not checked here (verify_checkpoint_note does that)."""
    name, kid, public = parse_verifier_key(vkey, COSIGNATURE_V1)
    text, sigs = split_note(note)
    for blob in _signatures_by(sigs, name, kid):
        if len(blob) != 4 + 8 + 64:
            continue
        timestamp = int.from_bytes(blob[4:12], "big")
        try:
            public.verify(blob[12:], _cosigned_message(text, timestamp))
        except InvalidSignature:
            raise CheckpointError(f"cosignature by {name} does not verify") from None
        origin, size, root = parse_body(text)
        return Checkpoint(origin, size, root.hex(), note), timestamp
    raise CheckpointError(f"no cosignature by {name}")
