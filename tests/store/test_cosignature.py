"""C2SP tlog-cosignature/v1 (Ed25519): a witness's cosignature on a ledger checkpoint."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault.store.checkpoint import (
    CheckpointError,
    cosign,
    cosigner_key,
    parse_verifier_key,
    sign,
    verifier_key,
    verify_checkpoint_note,
    verify_cosignature,
)


def test_cosignature_follows_c2sp_and_verifies_only_with_the_witness_key():
    log, witness = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cp = sign("vault.example/ledger", 7, hashlib.sha256(b"r").digest(), log, "vault.example/ledger")
    line = cosign(cp.note, witness, "witness.example/w1", 1_700_000_000)
    cosigned = cp.note + line.encode()
    vkey = cosigner_key("witness.example/w1", witness.public_key())

    # the key id commits to the 0x04 cosignature type; the signature is timestamp || Ed25519
    name, kid_hex, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[:1] == b"\x04"
    assert bytes.fromhex(kid_hex) == hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    blob = base64.b64decode(line.split(" ")[2])
    assert blob[:4].hex() == kid_hex and int.from_bytes(blob[4:12], "big") == 1_700_000_000
    message = b"cosignature/v1\ntime 1700000000\n" + cp.note.split(b"\n\n")[0] + b"\n"
    witness.public_key().verify(blob[12:], message)

    got, when = verify_cosignature(cosigned, vkey)
    assert (got.size, got.root, when) == (7, cp.root, 1_700_000_000)
    # the log's own signature still verifies on the cosigned note
    assert verify_checkpoint_note(cosigned, verifier_key("vault.example/ledger", log.public_key())).size == 7

    with pytest.raises(CheckpointError, match="no cosignature"):
        verify_cosignature(cp.note, vkey)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_cosignature(cosigned.replace(b"\n7\n", b"\n8\n"), vkey)
    other = cosigner_key("witness.example/w1", Ed25519PrivateKey.generate().public_key())
    with pytest.raises(CheckpointError):
        verify_cosignature(cosigned, other)
    # a checkpoint key is not a cosigner key, nor the other way round
    with pytest.raises(CheckpointError, match="cosignature"):
        parse_verifier_key(verifier_key("x", log.public_key()), b"\x04")
    with pytest.raises(CheckpointError):
        verify_checkpoint_note(cosigned, vkey)
