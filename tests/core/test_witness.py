"""Witnessed checkpoints on a copy of a real vault, the witness held outside the home: a
ledger rolled back (with and without the home's copy of the witnessed checkpoint) and a
history rewritten and re-signed with the home's own key are each caught; an export carries
the witness's evidence and verify-export checks it offline."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.core.helpers import init_vault, make_maildir, set_maildir_flags
from tests.fixtures.corpus import message_files
from vault.config import Config
from vault.store.ledger import Ledger
from vault.testing.cli import vaultctl, vaultctl_run
from vault.testing.witness_server import WitnessServer
from vault.witness.server import init_witness


def ledger_size(home: Path) -> int:
    return max(int(p.stem) for p in (home / "ledger" / "checkpoints").glob("*.note"))


def witnessed_size(home: Path) -> int:
    (record,) = (home / "witness").glob("cosigner-*.json")
    return json.loads(record.read_text())["size"]


def caught(r, *phrases) -> str:
    text = r.err + r.out
    assert r.code != 0, f"went unnoticed: {r}"
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in {text}"
    assert "Traceback" not in text
    print("caught:", text.strip().splitlines()[0])
    return text


def import_box(home, box):
    r = vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX")
    assert r.code == 0, r
    return r


@pytest.fixture(scope="module")
def base(tmp_path_factory, spamassassin_dir):
    """A vault of 30 real messages imported twice, witnessed by a witness whose directory is
    not in the home; ``older``: copies of ledger/ and witness/ after the first import."""
    root = tmp_path_factory.mktemp("witnessed")
    server = WitnessServer(root / "witness-host" / "w")
    home = root / "home"
    with server:
        init_vault(home, **{"witness.cosigners": [server.spec]})
        server.trust(home / "keys" / "ledger.ed25519.pub")
        box = make_maildir(root / "Maildir", message_files(spamassassin_dir / "spam-1")[:30])
        import_box(home, box)
        shutil.copytree(home / "ledger", root / "older" / "ledger")
        shutil.copytree(home / "witness", root / "older" / "witness")
        set_maildir_flags(box, 4, ["\\Seen"])
        for n, f in enumerate(message_files(spamassassin_dir / "spam-1")[30:40], 30):
            set_maildir_flags(box, n, [], data=f.read_bytes())
        import_box(home, box)
    return root


@pytest.fixture
def world(base, tmp_path):
    """A copy of the vault, its witness (directory and state) and the older copies; the
    copy's witness running."""
    root = tmp_path / "w"
    shutil.copytree(base, root, symlinks=True)
    server = WitnessServer(root / "witness-host" / "w")
    config = root / "home" / "config.toml"
    (was,) = Config.load(root / "home")["witness"]["cosigners"]
    config.write_text(config.read_text().replace(was, server.spec))
    with server:
        yield root, root / "home", server


def test_every_commit_is_cosigned_and_verify_asks_the_witness(world):
    root, home, server = world
    size = ledger_size(home)
    older = ledger_size(root / "older")
    assert 30 < older < size
    assert witnessed_size(home) == size
    assert server.status()["logs"][0]["size"] == size
    secret = (server.dir / "key").read_bytes()
    assert all(p.read_bytes() != secret for p in home.rglob("*") if p.is_file())  # not in the home
    ok = vaultctl_run(home, "verify")
    assert ok.code == 0 and "consistent with its 1 witness(es)" in ok.out, ok
    status = json.loads(vaultctl_run(home, "status", "--json").out)
    assert status["witnessed"].startswith(f"size {ledger_size(home)} by witness witness.test/w1")


def test_ledger_rollback_is_caught(world):
    root, home, _ = world
    size, older = ledger_size(home), ledger_size(root / "older")
    shutil.rmtree(home / "ledger")
    shutil.copytree(root / "older" / "ledger", home / "ledger")
    want = (f"holds {older} entries", f"a checkpoint of {size}", "rolled back")
    caught(vaultctl_run(home, "ls"), *want)
    caught(vaultctl_run(home, "verify"), *want)
    caught(vaultctl_run(home, "import", str(root / "Maildir"), "--mailbox", "user/jane/INBOX"), *want)
    assert ledger_size(home) == older  # nothing was written


def test_ledger_rollback_with_the_homes_copy_rolled_back_too(world):
    """The home's own record says the old size too: the witness still has the newer one."""
    root, home, server = world
    size, older = ledger_size(home), ledger_size(root / "older")
    for part in ("ledger", "witness"):
        shutil.rmtree(home / part)
        shutil.copytree(root / "older" / part, home / part)
    assert vaultctl_run(home, "ls").code == 0  # a reader has only the home's copy to go by
    want = (
        f"holds {older} entries",
        f"witness witness.test/w1 ({server.url}) witnessed a checkpoint of {size}",
    )
    caught(vaultctl_run(home, "verify"), *want)
    caught(vaultctl_run(home, "import", str(root / "Maildir"), "--mailbox", "user/jane/INBOX"), *want)
    assert ledger_size(home) == older
    assert server.status()["logs"][0]["size"] == size


def rewrite(home: Path, drop_item: str) -> int:
    """History rewritten without one message, re-signed with the home's own key (what anyone
    holding the home can do): a perfectly valid ledger of its own. Its new size."""
    config = Config.load(home)
    old = Ledger.from_config(config, writable=False)
    fresh = home / "ledger.new"
    new = Ledger.open(fresh, key_path=config.path("ledger", "key_path"), origin=config["ledger"]["origin"])
    for e in old.entries():
        if e.item != drop_item:
            new.append(e.kind, item=e.item, data=e.data, actor=e.actor, time=e.time)
    new.commit()
    assert new.verify() == []
    size = new.size
    new.close()
    old.close()
    shutil.rmtree(home / "ledger")
    fresh.rename(home / "ledger")
    return size


def first_item(home: Path) -> str:
    seg = sorted((home / "ledger" / "segments").glob("*.jsonl"))[0]
    for line in seg.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("kind") == "message.appended":  # (not the header line)
            return entry["item"]
    raise AssertionError("no message")


def test_rewritten_history_resigned_with_the_homes_key_is_caught(world):
    root, home, server = world
    witnessed = ledger_size(home)
    size = rewrite(home, first_item(home))
    assert size < witnessed

    # without its witness the rewrite passes everything
    bare = root / "bare"
    shutil.copytree(home, bare, symlinks=True)
    shutil.rmtree(bare / "witness")
    cfg = bare / "config.toml"
    cfg.write_text(
        "\n".join(line for line in cfg.read_text().splitlines() if not line.startswith("cosigners"))
    )
    # (verify compares the catalog with the ledger: a thorough forger rebuilds it too)
    assert vaultctl_run(bare, "rebuild").code == 0
    assert vaultctl_run(bare, "verify", "--read-data").code == 0

    # the home's copy of the witnessed checkpoint catches it at once
    caught(vaultctl_run(home, "ls"), f"holds {size} entries", f"checkpoint of {witnessed}")
    # the witness catches it when the home's copy is gone too, at the same size or grown past it
    shutil.rmtree(home / "witness")
    caught(vaultctl_run(home, "verify"), f"checkpoint of {witnessed}")
    assert vaultctl_run(home, "ls").code == 0
    caught(vaultctl_run(home, "import", str(root / "Maildir"), "--mailbox", "user/jane/INBOX"))
    assert server.status()["logs"][0]["size"] == witnessed


def test_rewritten_history_grown_past_the_witnessed_size_is_caught(world):
    root, home, server = world
    witnessed = ledger_size(home)
    config = Config.load(home)
    rewrite(home, first_item(home))
    led = Ledger.from_config(config)
    while led.size <= witnessed + 3:  # longer than what the witness saw: a consistency proof is due
        led.append("import.run", item=None, data={"padding": led.size})
        led.commit()
    led.close()
    shutil.rmtree(home / "witness")
    text = caught(vaultctl_run(home, "verify"), "not consistent with the checkpoint of", "rewritten")
    assert f"of {witnessed} entries" in text
    assert len(list((server.dir / "refused").iterdir())) == 1  # the witness kept the forged request


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rehash(export: Path) -> None:
    """What someone altering an export would do: make manifest.sha256 match again."""
    lines = [f"{sha((export / n).read_bytes())}  {n}" for n in ("manifest.json", "manifest.csv")]
    (export / "manifest.sha256").write_text("\n".join(lines) + "\n")


def test_export_carries_the_witness_evidence_and_verify_export_checks_it(world, tmp_path):
    root, home, server = world
    key = home / "keys" / "ledger.ed25519.pub"
    server.stop()  # commits go on unwitnessed: the export's proof then spans them
    set_maildir_flags(root / "Maildir", 7, ["\\Flagged"])
    import_box(home, root / "Maildir")
    witnessed, size = witnessed_size(home), ledger_size(home)
    assert witnessed < size
    out = tmp_path / "export"
    assert vaultctl_run(home, "search", "subject:the", "--export", str(out)).code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    (ev,) = manifest["witness"]
    assert ev["type"] == "cosignature" and ev["consistency"]["from"] == witnessed
    assert ev["consistency"]["to"] >= size and ev["consistency"]["proof"]

    wkey = server.dir / "key.pub"
    ok = vaultctl(None, "verify-export", str(out), "--key", str(key), "--witness-key", str(wkey))
    assert ok.returncode == 0 and "cosigned by 1 witness(es)" in ok.stdout, ok.stderr

    other_witness = tmp_path / "other-witness"
    init_witness(other_witness, "witness.test/w1")  # the same name, another key

    def tampered(change, *args):
        copy = tmp_path / f"t{len(list(tmp_path.glob('t*')))}"
        shutil.copytree(out, copy)
        m = json.loads((copy / "manifest.json").read_text())
        change(m)
        (copy / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True))
        rehash(copy)
        done = vaultctl(None, "verify-export", str(copy), "--key", str(key), *args)
        assert done.returncode != 0, f"tampered witness evidence passed: {done.stdout}"
        print("caught:", done.stderr.strip().splitlines()[0])
        return done.stderr

    def flip_proof(m):
        h = m["witness"][0]["consistency"]["proof"][0]
        m["witness"][0]["consistency"]["proof"][0] = ("0" if h[0] != "0" else "1") + h[1:]

    def older_root(m):
        note = m["witness"][0]["checkpoint"].split("\n")
        note[2] = "A" + note[2][1:] if note[2][0] != "A" else "B" + note[2][1:]
        m["witness"][0]["checkpoint"] = "\n".join(note)

    def drop_cosignature(m):
        note = m["witness"][0]["checkpoint"]
        m["witness"][0]["checkpoint"] = note[: note.rindex("\u2014")]

    with_key = ("--witness-key", str(wkey))
    assert "not consistent" in tampered(flip_proof)
    assert "does not verify" in tampered(older_root)
    assert "no cosignature" in tampered(drop_cosignature)
    assert "no valid cosignature by witness witness.test/w1" in tampered(
        lambda m: m.update(witness=[]), *with_key
    )
    assert "no valid cosignature" in tampered(lambda m: None, "--witness-key", str(other_witness / "key.pub"))

    # the witness back: verify proves the whole unwitnessed stretch to it
    server.start()
    assert vaultctl_run(home, "verify").code == 0
    assert server.status()["logs"][0]["size"] == ledger_size(home)


def test_an_unreachable_witness_does_not_stop_archiving_and_is_caught_up(world):
    root, home, server = world
    server.stop()
    set_maildir_flags(root / "Maildir", 8, ["\\Seen"])
    r = vaultctl(home, "import", str(root / "Maildir"), "--mailbox", "user/jane/INBOX")  # its own process
    assert r.returncode == 0, r.stderr
    assert "not witnessed: witness witness.test/w1" in r.stderr and "Traceback" not in r.stderr
    assert witnessed_size(home) < ledger_size(home)
    server.start()
    set_maildir_flags(root / "Maildir", 9, ["\\Seen"])
    import_box(home, root / "Maildir")  # the writer's open catches the witness up, proving the gap
    assert witnessed_size(home) == ledger_size(home) == server.status()["logs"][0]["size"]


def test_a_home_copy_altered_by_hand_is_refused(world):
    _, home, _ = world
    (record,) = (home / "witness").glob("cosigner-*.json")
    data = json.loads(record.read_text())
    data["note"] = data["note"].replace("\n" + str(data["size"]) + "\n", "\n" + str(data["size"] - 1) + "\n")
    record.write_text(json.dumps(data))
    caught(vaultctl_run(home, "ls"), "altered")
