"""vaultctl reconcile against a real Cyrus: every change the archive did not hear about (new
and expunged messages, flags, renames, ACL, metadata, deleted folders, folders never seen) is
found, recorded behind a reconcile.difference entry, and the archive then equals the server."""

from __future__ import annotations

import imaplib
import json
import os
import signal
import time

import pytest

from tests.ingest.collector.test_collector_cyrus import imap_view, uniqueid
from tests.ingest.worker.live import LiveArchive, quiet, wait_for_event
from tests.ingest.worker.test_handlers_cyrus import mail
from vault.archive import Vault
from vault.faults import ENV
from vault.testing import cli

pytestmark = pytest.mark.cyrus
imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))


@pytest.fixture
def archive(tmp_path, cyrus_factory):
    live = LiveArchive(tmp_path / "vault", cyrus_factory())
    yield live
    live.close()


def in_step(archive, folders: list[tuple[str, str]]) -> None:
    """The archive's present messages, flags, internal dates and bytes are the server's."""
    catalog = archive.vault.catalog
    client = archive.cyrus.imap("alice")
    try:
        for mailbox_id, imap_name in folders:
            view = imap_view(client, imap_name)
            live = {i["uid"]: i for i in catalog.live_items(mailbox_id)}
            assert sorted(live) == sorted(view), imap_name
            for uid, seen in view.items():
                assert (sorted(live[uid]["flags"]), live[uid]["internal_date"]) == (
                    seen["flags"],
                    seen["internal_date"],
                ), (imap_name, uid)
                typ, data = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
                assert archive.vault.store.get(live[uid]["blob"]) == data[0][1]
    finally:
        client.logout()


def reconcile(archive, *args) -> list[dict]:
    done = archive.vaultctl("reconcile", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def settle(archive, user="alice"):
    wait_for_event(archive.cyrus, lambda e: e["event"] == "Logout" and e.get("user") == user)
    quiet(archive.cyrus)


def test_reconcile_records_every_missed_change_and_then_nothing(archive):
    server = archive.cyrus
    alice = server.imap("alice")
    alice.create("INBOX/Rec")
    dates = [imaplib.Time2Internaldate(time.time() - 86400 * (i + 1)) for i in range(4)]
    for i, flags in enumerate([None, None, r"(\Seen)", None]):
        alice.append("INBOX/Rec", flags, dates[i], mail(f"r{i}"))
    alice.logout()
    settle(archive)
    archive.feed_new_hook_events()
    assert archive.quarantined == []
    mailbox_id = uniqueid(server, "user/alice/Rec")
    in_step(archive, [(mailbox_id, "INBOX/Rec")])

    # changes whose events the archive never gets
    alice = server.imap("alice")
    alice.append("INBOX/Rec", r"(\Flagged)", imaplib.Time2Internaldate(time.time() - 7 * 86400), mail("new"))
    alice.select("INBOX/Rec")
    alice.uid("STORE", "2", "+FLAGS", r"(\Answered)")
    alice.uid("STORE", "3", "-FLAGS", r"(\Seen)")
    alice.uid("STORE", "4", "+FLAGS", r"(\Deleted)")
    alice.expunge()
    alice.unselect()
    alice.setacl("INBOX/Rec", "bob", "lr")
    alice._simple_command("SETMETADATA", "INBOX/Rec", '(/shared/comment "reconciled")')
    alice.rename("INBOX/Rec", "INBOX/Rec2")
    alice.logout()
    settle(archive)
    archive.skip_hook_events()
    before = archive.vault.ledger.size

    reports = {r["mailbox_id"]: r for r in reconcile(archive)}
    rec = reports[mailbox_id]
    assert (rec["mailbox"], rec["appended"], rec["expunged"], sorted(rec["flag_changes"])) == (
        "user/alice/Rec2",
        [5],
        [4],
        [2, 3],
    )
    assert sorted(rec["folder_changes"]) == ["acl", "metadata", "renamed"]
    assert all(r["differences"] == 0 for m, r in reports.items() if m != mailbox_id)
    in_step(archive, [(mailbox_id, "INBOX/Rec2")])
    folder = archive.vault.catalog.folder(mailbox_id)
    assert folder["name"] == "user/alice/Rec2" and json.loads(folder["acl"])["bob"] == "lr"
    assert json.loads(folder["metadata"])["/shared/comment"] == "reconciled"

    # every fix is preceded by a reconcile.difference on the same item naming what differed
    entries = [archive.vault.ledger.get(s) for s in range(before + 1, archive.vault.ledger.size + 1)]
    named = []
    for n, e in enumerate(entries):
        assert e.data["reconciled"] is True and e.actor == "vault-reconcile"
        if e.kind == "reconcile.difference":
            named.append(e.data["difference"])
            continue
        previous = next(p for p in reversed(entries[:n]) if p.kind == "reconcile.difference")
        assert previous.item == e.item
    assert sorted(named) == sorted(["missing", "expunged", "flags", "flags", "acl", "metadata", "name"])

    # run again: nothing differs, nothing is written
    size = archive.vault.ledger.size
    assert all(r["differences"] == 0 and not r["problems"] for r in reconcile(archive))
    assert archive.vault.ledger.size == size


def test_a_folder_deleted_without_an_event_is_closed(archive):
    server = archive.cyrus
    alice = server.imap("alice")
    alice.create("INBOX/Gone")
    alice.append("INBOX/Gone", None, None, mail("g1"))
    alice.append("INBOX/Gone", None, None, mail("g2"))
    alice.logout()
    settle(archive)
    archive.feed_new_hook_events()
    mailbox_id = uniqueid(server, "user/alice/Gone")
    alice = server.imap("alice")
    alice.delete("INBOX/Gone")
    alice.logout()
    settle(archive)
    archive.skip_hook_events()

    report = next(r for r in reconcile(archive) if r["mailbox_id"] == mailbox_id)
    assert report["expunged"] == [1, 2] and report["folder_changes"] == ["deleted"]
    assert archive.vault.catalog.folder(mailbox_id)["deleted_at"] is not None
    assert archive.vault.catalog.live_items(mailbox_id) == []


def test_a_named_mailbox_the_archive_never_saw_is_archived_whole(archive):
    server = archive.cyrus
    alice = server.imap("alice")
    alice.create("INBOX/Unseen")
    for i in range(3):
        alice.append("INBOX/Unseen", r"(\Seen)" if i else None, None, mail(f"u{i}"))
    alice.logout()
    settle(archive)
    archive.skip_hook_events()
    [report] = reconcile(archive, "--mailbox", "user/alice/Unseen")
    assert report["folder_changes"][0] == "created" and report["appended"] == [1, 2, 3]
    in_step(archive, [(uniqueid(server, "user/alice/Unseen"), "INBOX/Unseen")])
    [again] = reconcile(archive, "--mailbox", "user/alice/Unseen")
    assert again["differences"] == 0
    [ghost] = reconcile(archive, "--mailbox", "user/alice/NoSuchFolder")
    assert ghost["differences"] == 0 and "not on the server" in ghost["problems"][0]


def test_imported_folders_are_left_alone(archive, tmp_path):
    maildir = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1.1.host:2,S").write_bytes(mail("imported"))
    done = archive.vaultctl("import", str(maildir), "--mailbox", "user/jane/INBOX")
    assert done.returncode == 0, done.stderr
    jane = archive.vault.catalog.folder_id("user/jane/INBOX")
    reports = reconcile(archive)
    assert jane not in {r["mailbox_id"] for r in reports}
    assert len(archive.vault.catalog.live_items(jane)) == 1


def test_a_reconciliation_never_travels_on_the_event_wire(archive):
    """Another process holds the vault and no vault service answers: the command says so and
    records nothing; it sends nothing to the broker's dealer router either (a reconciliation
    reaches the service through its local API, never the event wire)."""
    from vault.config import DEFAULTS
    from vault.testing.broker_standin import StandInBroker
    from vault.testing.cli import vaultctl

    server = archive.cyrus
    archive.feed_new_hook_events()
    alice = server.imap("alice")
    alice.append("INBOX", r"(\Seen)", None, mail("missed"))
    alice.logout()
    settle(archive)
    archive.skip_hook_events()
    size = archive.vault.ledger.size
    with StandInBroker() as broker:
        config = archive.home / "config.toml"
        default = f'broker = "{DEFAULTS["dealer"]["broker"]}"'
        config.write_text(config.read_text().replace(default, f'broker = "{broker.address}"'))
        # our writer holds the vault, as a command writing it would
        done = vaultctl(archive.home, "reconcile", "--mailbox", "user/alice", "--json", timeout=120)
        assert done.returncode != 0 and "another command writes the vault" in done.stderr, done
        assert broker.received == []
    assert archive.vault.ledger.size == size
    [report] = reconcile(archive, "--mailbox", "user/alice")  # the lock free: done, here
    assert len(report["appended"]) == 1


def test_reconcile_all_discovers_every_mailbox_and_skips_the_unchanged(archive):
    server = archive.cyrus
    alice = server.imap("alice")
    alice.create("INBOX/Found")
    for i in range(2):
        alice.append("INBOX/Found", None, None, mail(f"f{i}"))
    alice.logout()
    server.lmtp_deliver("bob@vault.test", mail("for bob"))
    settle(archive)
    archive.skip_hook_events()  # the vault hears of none of it

    first = {r["mailbox"]: r for r in reconcile(archive, "--all")}
    assert first["user/alice/Found"]["folder_changes"][0] == "created"
    assert (first["user/alice/Found"]["appended"], first["user/bob"]["appended"]) == ([1, 2], [1])
    state = json.loads((archive.home / "reconcile-state.json").read_text())
    assert state["first_sync"] and set(state["mailboxes"]) >= {r["mailbox_id"] for r in first.values()}

    again = reconcile(archive, "--all")
    assert all(r["unchanged"] and r["differences"] == 0 for r in again), again
    alice = server.imap("alice")
    alice.append("INBOX/Found", None, None, mail("f2"))
    alice.logout()
    settle(archive)
    archive.skip_hook_events()
    third = {r["mailbox"]: r for r in reconcile(archive, "--all")}
    assert third["user/alice/Found"]["appended"] == [3] and not third["user/alice/Found"]["unchanged"]
    assert all(r["unchanged"] for name, r in third.items() if name != "user/alice/Found"), third
    full = reconcile(archive, "--all", "--full")
    assert not any(r["unchanged"] for r in full) and all(r["differences"] == 0 for r in full)

    # a run that stopped half-way: what it did not remember is enumerated, the rest skipped
    path = archive.home / "reconcile-state.json"
    state = json.loads(path.read_text())
    bob = first["user/bob"]["mailbox_id"]
    del state["mailboxes"][bob]
    path.write_text(json.dumps(state))
    resumed = {r["mailbox_id"]: r for r in reconcile(archive, "--all")}
    assert not resumed[bob]["unchanged"] and all(r["unchanged"] for m, r in resumed.items() if m != bob)


def entries(archive) -> list[dict]:
    """Every ledger entry, as a reader sees it now."""
    with archive.released():
        vault = Vault.open(archive.config)
        try:
            return [e.to_json() for e in vault.ledger.entries()]
        finally:
            vault.close()


def test_a_first_sync_killed_half_way_finishes_on_the_next_run_with_nothing_doubled(archive):
    """SIGKILLed right after a mailbox's commit, before its state was remembered: the next
    ``reconcile --all`` enumerates that mailbox again, finds it in step, and does the rest."""
    server = archive.cyrus
    for i in range(3):
        server.lmtp_deliver("bob@vault.test", mail(f"bob {i}"))
    alice = server.imap("alice")
    alice.create("INBOX/Kept")
    for i in range(3):
        alice.append("INBOX/Kept", None, None, mail(f"kept {i}"))
    alice.logout()
    settle(archive)
    archive.skip_hook_events()  # the vault hears of none of it
    with archive.released():
        killed = cli.vaultctl(
            archive.home, "reconcile", "--all", env={**os.environ, ENV: "reconcile.committed"}, timeout=300
        )
    assert killed.returncode == -signal.SIGKILL, killed
    path = archive.home / "reconcile-state.json"
    assert not path.exists() or not json.loads(path.read_text()).get("first_sync")
    # one mailbox was done and committed before the kill
    assert "reconcile.difference" in [e["kind"] for e in entries(archive)]
    second = reconcile(archive, "--all")
    assert not any(r["problems"] for r in second), second
    third = reconcile(archive, "--all")
    assert all(r["unchanged"] and r["differences"] == 0 for r in third), third
    appended = [e for e in entries(archive) if e["kind"] == "message.appended"]
    items = [e["item"] for e in appended]
    assert len(items) == len(set(items)), "an item appended twice"
    folders = ("user/bob", "user/alice/Kept")
    per_folder = {f: sum(1 for e in appended if e["data"].get("mailbox") == f) for f in folders}
    assert per_folder == {"user/bob": 3, "user/alice/Kept": 3}, per_folder
