"""Encryption at rest of every object the content store writes to its backend.

Two ciphers behind one interface, chosen by ``[store] encryption`` (vault/store/keys.py):
``PlainCipher`` (an unencrypted store: what vaults were before, byte for byte) and
``SealedCipher`` (AES-256-GCM under the vault's master key). The content store
(vault/store/cas.py) calls the same methods either way, so the layout above it is unchanged.

On-store format of an encrypted store (docs/architecture.md 4.1):

- **Whole objects** (the ``config`` check object) are one *envelope*:
  ``b"VLTE" || version (1 byte, 1) || nonce (12 random bytes) || ciphertext || tag (16)``,
  with the associated data ``b"vault-object\\0" || object key``: an object moved to another
  key does not authenticate.
- **Packs** start with the header ``b"VLTP" || version (1 byte, 2) || 3 zero bytes`` and hold
  one sealed record per blob: ``ciphertext || tag`` of its zstd frame (version 2: without its
  magic, dictionary id and content size, which the pack index holds: store/pack.py
  strip_frame; version 1, still read: the whole frame), under the pack's own
  key ``HMAC-SHA256(data key, "vault pack key\\0" || pack name)`` with the record's offset as
  its nonce (12 bytes, big-endian: unique in the pack) and ``b"vault-frame\\0" || pack key ||
  "\\0" || blob id`` as associated data: a record moved inside a pack, or to another, fails.
- **Names**: a pack is named by the keyed id ``HMAC-SHA256(id key, its plaintext frames)``,
  not by a hash anyone could compute; the same pack written twice gets the same name and the
  same bytes (its key and nonces derive from the name), so a retried write stays idempotent.
- **Pack indexes** are no object of their own: each pack's is sealed as its last record, its
  trailer (store/pack_indexes.py).

Every read authenticates before anything is decompressed or parsed. A failure is
``AuthenticationFailed`` naming the object; a malformed envelope is ``EnvelopeError``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.store.backends.base import StoreError

OBJECT_MAGIC = b"VLTE"
PACK_MAGIC = b"VLTP"
VERSION = 1
NONCE = 12
TAG = 16
# pack format 2: each record holds its zstd frame stripped of what the pack index says (its
# magic, dictionary id and content size: store/pack.py strip_frame); 1: the whole frame
PACK_VERSION = 2
PACK_VERSIONS = (1, 2)
PACK_HEADER = PACK_MAGIC + bytes([PACK_VERSION]) + b"\0\0\0"
CIPHER_NAME = "AES-256-GCM"


class EnvelopeError(StoreError):
    """An object that is not a readable envelope of this format (truncated, wrong magic or
    version): the store is damaged, or not this vault's."""


class AuthenticationFailed(StoreError):
    """An object or record that does not authenticate: the wrong key, or bytes that were
    changed, truncated or moved."""


def _object_ad(key: str) -> bytes:
    return b"vault-object\0" + key.encode()


def _frame_ad(pack_key: str, blob: str) -> bytes:
    return b"vault-frame\0" + pack_key.encode() + b"\0" + blob.encode()


class _Checked:
    """A cipher that runs one check (store/keys.py: is this the store's key?) before its first
    use, so the check costs the backend nothing until the store is really read or written:
    commands that never touch the store work while it is unreachable."""

    _check: Callable[[], None] | None = None

    def check_first(self, check: Callable[[], None]) -> None:
        self._check = check

    def ready(self) -> None:
        """Run the pending check now (verify: a wrong key is a problem to report)."""
        if self._check is not None:
            self._check()  # raises, and stays armed, when the store is not this key's
            self._check = None


class PlainCipher(_Checked):
    """No encryption: pack names are the SHA-256 of the pack, objects are stored as they are."""

    encrypted = False
    header = b""
    record_format = 0  # what a pack's records hold: whole zstd frames, no header
    overhead = 0  # bytes a record adds to its frame

    def pack_name(self, plain: bytes) -> str:
        self.ready()
        return hashlib.sha256(plain).hexdigest()

    def seal_object(self, key: str, data: bytes) -> bytes:
        self.ready()
        return data

    def open_object(self, key: str, data: bytes) -> bytes:
        self.ready()
        return data

    def seal_record(self, pack: str, pack_key: str, offset: int, blob: str, frame: bytes) -> bytes:
        return frame

    def open_record(self, pack: str, pack_key: str, offset: int, blob: str, record: bytes) -> bytes:
        self.ready()
        return record

    def check_header(self, pack_key: str, data: bytes) -> int:
        """0: an unencrypted pack has no header, nor a format of its records."""
        self.ready()
        return 0


class SealedCipher(_Checked):
    """AES-256-GCM with a 32-byte data key; pack names keyed with a 32-byte id key."""

    encrypted = True
    header = PACK_HEADER
    record_format = PACK_VERSION
    overhead = TAG

    def __init__(self, data_key: bytes, id_key: bytes):
        if len(data_key) != 32 or len(id_key) != 32:
            raise ValueError("the data key and the id key are 32 bytes each")
        self._data_key = data_key
        self._id_key = id_key
        self._aead = AESGCM(data_key)
        self._pack_aead: tuple[str, AESGCM] | None = None  # the last pack's cipher

    def pack_name(self, plain: bytes) -> str:
        self.ready()
        return hmac.new(self._id_key, plain, hashlib.sha256).hexdigest()

    def seal_object(self, key: str, data: bytes) -> bytes:
        self.ready()
        nonce = os.urandom(NONCE)
        return OBJECT_MAGIC + bytes([VERSION]) + nonce + self._aead.encrypt(nonce, data, _object_ad(key))

    def open_object(self, key: str, data: bytes) -> bytes:
        self.ready()
        head = len(OBJECT_MAGIC) + 1
        if len(data) < head + NONCE + TAG:
            raise EnvelopeError(f"object {key}: {len(data)} bytes, too short for an encrypted envelope")
        if data[: len(OBJECT_MAGIC)] != OBJECT_MAGIC:
            raise EnvelopeError(f"object {key}: not an encrypted vault object (no envelope magic)")
        if data[len(OBJECT_MAGIC)] != VERSION:
            raise EnvelopeError(f"object {key}: unsupported envelope version {data[len(OBJECT_MAGIC)]}")
        nonce = data[head : head + NONCE]
        try:
            return self._aead.decrypt(nonce, data[head + NONCE :], _object_ad(key))
        except InvalidTag:
            raise AuthenticationFailed(
                f"object {key}: authentication failed (the wrong key, or the object was changed or moved)"
            ) from None

    def _pack_cipher(self, pack: str) -> AESGCM:
        if self._pack_aead is None or self._pack_aead[0] != pack:
            key = hmac.new(self._data_key, b"vault pack key\0" + pack.encode(), hashlib.sha256).digest()
            self._pack_aead = (pack, AESGCM(key))
        return self._pack_aead[1]

    def seal_record(self, pack: str, pack_key: str, offset: int, blob: str, frame: bytes) -> bytes:
        return self._pack_cipher(pack).encrypt(
            offset.to_bytes(NONCE, "big"), frame, _frame_ad(pack_key, blob)
        )

    def open_record(self, pack: str, pack_key: str, offset: int, blob: str, record: bytes) -> bytes:
        self.ready()
        if len(record) < TAG or offset < len(PACK_HEADER) or offset >= 1 << (8 * NONCE):
            raise EnvelopeError(f"pack {pack}: record of {blob} at {offset} is out of shape")
        try:
            return self._pack_cipher(pack).decrypt(
                offset.to_bytes(NONCE, "big"), record, _frame_ad(pack_key, blob)
            )
        except InvalidTag:
            raise AuthenticationFailed(
                f"pack {pack}: authentication failed at offset {offset} (the wrong key, or the pack was changed)"
            ) from None

    def check_header(self, pack_key: str, data: bytes) -> int:
        """A pack's first bytes (or all of them) read back: its header is of a format this
        reads; which (``PACK_VERSIONS``)."""
        self.ready()
        head = data[: len(PACK_HEADER)]
        if len(head) < len(PACK_HEADER) or head[:4] != PACK_MAGIC or head[5:] != b"\0\0\0":
            raise EnvelopeError(f"object {pack_key}: not an encrypted vault pack (bad header)")
        if head[4] not in PACK_VERSIONS:
            raise EnvelopeError(f"object {pack_key}: unsupported pack version {head[4]}")
        return head[4]


Cipher = PlainCipher | SealedCipher
