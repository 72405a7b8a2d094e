"""The cosigning witness speaks C2SP tlog-witness add-checkpoint: every answer, over its real
unix socket, against checkpoints and proofs of a real ledger."""

from __future__ import annotations

import shutil

import pytest

from vault.store import merkle
from vault.store.checkpoint import sign, verify_cosignature
from vault.store.ledger import Ledger
from vault.testing.witness_server import WitnessServer
from vault.witness import protocol
from vault.witness.cosigner import Cosigner, Unreachable

ORIGIN = "test.example/ledger"


def fill(ledger, n):
    for i in range(n):
        ledger.append("message.appended", item=f"box:1:{ledger.size + i}", data={"n": i})
    return ledger.commit()


@pytest.fixture
def setup(tmp_path):
    led = Ledger.open(tmp_path / "home" / "ledger", key_path=tmp_path / "home" / "key", origin=ORIGIN)
    server = WitnessServer(tmp_path / "witness-host" / "w")
    server.trust(tmp_path / "home" / "key.pub")
    with server:
        yield led, server, Cosigner(server.url, server.key, timeout=10)
    led.close()


def proof(led, old, new):
    return [bytes.fromhex(h) for h in led.consistency_proof(old, new)]


def test_cosigns_only_consistent_extensions(setup):
    led, server, c = setup
    first = fill(led, 10)
    answer = c.add_checkpoint(0, [], first.note)
    assert answer.status == 200 and answer.body.startswith("\u2014 witness.test/w1 ".encode())
    cp, when = verify_cosignature(first.note + answer.body, server.key)
    assert cp.size == 10 and when > 1_600_000_000

    second = fill(led, 7)
    stale = c.add_checkpoint(0, [], second.note)  # the vault claims it never had it cosigned
    assert (stale.status, stale.body, stale.content_type) == (409, b"10\n", protocol.SIZE_TYPE)
    assert c.add_checkpoint(10, proof(led, 10, 17), second.note).status == 200
    assert server.status()["logs"] == [{"origin": ORIGIN, "size": 17, "root": second.root}]

    # a rolled-back vault (offering the older checkpoint) is told the size the witness has
    back = c.add_checkpoint(10, [], first.note)
    assert (back.status, back.body) == (409, b"17\n")
    old_size_too_big = c.add_checkpoint(17, [], first.note)
    assert old_size_too_big.status == 400


def test_refuses_rewritten_history_signed_with_the_same_key(setup, tmp_path):
    led, server, c = setup
    cp = fill(led, 12)
    assert c.add_checkpoint(0, [], cp.note).status == 200
    # the same key signs another history (what a home's own key can do)
    other = Ledger.open(tmp_path / "other", key_path=tmp_path / "home" / "key", origin=ORIGIN)
    for i in range(12):
        other.append("message.appended", item=f"box:1:{i}", data={"n": i, "rewritten": True})
    forged = other.commit()
    assert forged is not None and forged.size == 12 and forged.root != cp.root
    assert c.add_checkpoint(12, [], forged.note).status == 409  # same size, another root
    more = fill(other, 5)
    refused = c.add_checkpoint(12, proof(other, 12, 17), more.note)
    assert refused.status == 422
    kept = list((server.dir / "refused").iterdir())
    assert len(kept) == 2  # both refusals kept as evidence of the fork
    assert server.status()["logs"][0]["size"] == 12


def test_unknown_origin_untrusted_key_and_malformed_requests(setup, tmp_path):
    led, server, c = setup
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    cp = fill(led, 3)
    stranger = sign("elsewhere.example/log", 3, bytes.fromhex(cp.root), Ed25519PrivateKey.generate(), "x")
    assert c.add_checkpoint(0, [], stranger.note).status == 404
    impostor = sign(ORIGIN, 3, bytes.fromhex(cp.root), Ed25519PrivateKey.generate(), ORIGIN)
    assert c.add_checkpoint(0, [], impostor.note).status == 403
    assert c.add_checkpoint(0, [merkle.leaf_hash(b"x")], cp.note).status == 400  # proof from 0
    conn_body = b"old 01\n\n" + cp.note
    from vault.unixhttp import UnixHTTPConnection

    conn = UnixHTTPConnection(server.socket, 10)
    conn.request("POST", protocol.PATH, conn_body)
    assert conn.getresponse().status == 400
    conn.close()


def test_state_survives_a_restart_and_one_process_per_directory(setup):
    led, server, c = setup
    cp = fill(led, 4)
    assert c.add_checkpoint(0, [], cp.note).status == 200
    with pytest.raises(RuntimeError, match="another witness process"):
        with WitnessServer(server.dir):
            pass
    server.stop()
    with pytest.raises(Unreachable):
        c.add_checkpoint(4, [], cp.note)
    server.start()
    assert c.add_checkpoint(0, [], cp.note).status == 409  # it remembers 4


def test_refuses_a_key_and_directory_mismatch(tmp_path):
    server = WitnessServer(tmp_path / "w")
    other = WitnessServer(tmp_path / "o", name="witness.test/w2")
    shutil.copy(other.dir / "key.pub", server.dir / "key.pub")
    with pytest.raises(RuntimeError, match="not the public half"):
        with server:
            pass
