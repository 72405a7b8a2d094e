"""The handlers' edge cases, each on events a real Cyrus emitted: folders the archive never
saw, mailboxes the server does not know, spool files already gone, a Logout before its
Login, old event names, users by stable directory id."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.data import data_file
from tests.ingest.collector.test_collector_cyrus import uniqueid
from tests.ingest.worker.live import LiveArchive, hook_lines, quiet, wait_for_event
from tests.ingest.worker.test_handlers_cyrus import mail
from vault.ingest.context import Postpone, Quarantine
from vault.ingest.worker.handlers import ALIASES, HANDLERS, handle

SAMPLE_NAMES = {
    json.loads(line)["event"] for line in open(data_file("cyrus/cyrus-events.jsonl")) if line.strip()
}


def test_registry_covers_every_event_cyrus_sent_and_the_old_names():
    assert SAMPLE_NAMES <= set(HANDLERS)
    assert {"QuotaExceed", "QuotaWithin"} <= set(HANDLERS)
    for old, new in ALIASES.items():
        assert new in HANDLERS and old not in HANDLERS


@pytest.mark.parametrize(
    "event, why",
    [
        ({"event": "NoSuchThing"}, "unknown event type"),
        ({"no": "name"}, "unknown event type"),
        (["a", "list"], "not a JSON object"),
        ({"event": "MessageNew", "uri": "imap://h/user/a;UIDVALIDITY=1/;UID=1"}, "mailboxID"),
        ({"event": "MessageExpunge", "mailboxID": "x", "uri": "http://nope", "uidset": "1"}, "imap://"),
        (
            {
                "event": "FlagsSet",
                "mailboxID": "x",
                "uri": "imap://h/user/a;UIDVALIDITY=1",
                "uidset": "1:*",
                "flagNames": "\\Seen",
            },
            "UID",
        ),
    ],
)
def test_bad_events_are_quarantined_with_the_reason(event, why, tmp_path):
    class Nothing:  # nothing is asked of the context before the event is rejected
        catalog = store = collector = directory = config = None
        event_id = "e"

    with pytest.raises(Quarantine, match=why):
        handle(event, Nothing())


@pytest.fixture
def archive(tmp_path, cyrus_server):
    live = LiveArchive(tmp_path / "vault", cyrus_server)
    live.skip_hook_events()  # events of earlier tests on the shared server
    yield live
    live.close()


def _new_events(server, since: int, name: str) -> list[bytes]:
    quiet(server)
    return [raw for raw in hook_lines(server)[since:] if json.loads(raw)["event"] == name]


def test_a_folder_the_archive_never_saw_is_discovered(archive):
    server = archive.cyrus
    folder = f"D{uuid.uuid4().hex[:8]}"
    server.create_mailbox(f"user/alice/{folder}")
    quiet(server)
    archive.skip_hook_events()  # the archive missed the MailboxCreate
    client = server.imap("alice")
    assert client.append(f"INBOX/{folder}", None, None, mail("late"))[0] == "OK"
    client.logout()
    wait_for_event(server, lambda e: e["event"] == "MessageAppend" and folder in e["uri"])
    archive.feed_new_hook_events()
    assert archive.quarantined == []
    mailbox_id = uniqueid(server, f"user/alice/{folder}")
    kinds = [
        (e["kind"], e["data"].get("discovered")) for e in archive.log("--mailbox", f"user/alice/{folder}")
    ]
    assert kinds[:2] == [("folder.created", True), ("folder.acl", None)]
    assert kinds[-1] == ("message.appended", None)
    assert archive.vault.catalog.folder(mailbox_id)["name"] == f"user/alice/{folder}"


def test_an_event_for_a_mailbox_the_server_does_not_know_is_quarantined(archive):
    server = archive.cyrus
    since = len(hook_lines(server))
    server.lmtp_deliver("alice", mail("for a ghost"))
    raw = _new_events(server, since, "MessageNew")[-1]
    event = json.loads(raw)
    event["mailboxID"] = "ghost" + uuid.uuid4().hex[:19]
    archive.feed([json.dumps(event).encode()])
    assert len(archive.quarantined) == 1
    assert "unknown to the archive and to the server" in archive.quarantined[0][1]
    assert archive.vault.ledger.size == 0


def test_a_spool_file_already_gone_is_quarantined(archive):
    server = archive.cyrus
    since = len(hook_lines(server))
    server.lmtp_deliver("alice", mail("vanishing"))
    event = json.loads(_new_events(server, since, "MessageNew")[-1])
    uid = int(event["uri"].rsplit("=", 1)[1])
    (server.mailbox_path("user/alice") / f"{uid}.").unlink()
    archive.feed([json.dumps(event).encode()])
    reasons = [why for _, why in archive.quarantined]
    assert len(reasons) == 1 and "spool file gone" in reasons[0] and f"UID {uid}" in reasons[0]
    # nothing about the message was recorded (the folder may have been discovered first: no)
    assert archive.vault.ledger.size == 0


def test_logout_before_login_is_postponed_then_paired(archive):
    server = archive.cyrus
    since = len(hook_lines(server))
    server.imap("bob").logout()
    wait_for_event(server, lambda e: e["event"] == "Logout" and e.get("user") == "bob")
    quiet(server)
    mine = [raw for raw in hook_lines(server)[since:] if json.loads(raw).get("user") == "bob"]
    login = next(r for r in mine if json.loads(r)["event"] == "Login")
    logout = next(r for r in mine if json.loads(r)["event"] == "Logout")
    with pytest.raises(Postpone, match="Login is not in the archive"):
        handle(json.loads(logout), archive.context("x"))
    archive.feed([logout, login])  # the Logout arrives first; retried after the Login
    assert archive.postponed == []
    session_id = json.loads(login)["vnd.cmu.sessionId"]
    session = archive.vault.catalog.session(f"session:{session_id}")
    assert session["user"] == "bob" and session["logout_at"] >= session["login_at"]
    out = archive.log("--item", f"session:{session_id}")[-1]
    assert out["kind"] == "session.logout" and out["data"]["login_time"] == session["login_at"]


def test_old_spellings_are_handled_like_cyrus_names(archive):
    server = archive.cyrus
    folder = f"A{uuid.uuid4().hex[:8]}"
    client = server.imap("alice")
    try:
        client.create(f"INBOX/{folder}")
        client.append("INBOX", None, None, mail("to copy"))
        client.select("INBOX")
        typ, data = client.search(None, "ALL")
        last = data[0].split()[-1].decode()
        client.copy(last, f"INBOX/{folder}")
        client.subscribe(f"INBOX/{folder}")
        client.unsubscribe(f"INBOX/{folder}")
    finally:
        client.logout()
    wait_for_event(server, lambda e: e["event"] == "MailboxUnSubscribe" and folder in e["uri"])
    quiet(server)
    renamed = []
    for raw in hook_lines(server)[archive._seen :]:
        event = json.loads(raw)
        if event["event"] == "vnd.cmu.MessageCopy":
            event["event"] = "MessageCopy"  # what Bonnie listened for
        if event["event"] == "MailboxUnSubscribe":
            event["event"] = "MailboxUnsubscribe"
        renamed.append(json.dumps(event).encode())
    archive.feed(renamed)
    assert archive.quarantined == []
    kinds = [e["kind"] for e in archive.log("--mailbox", f"user/alice/{folder}")]
    assert "message.copied" in kinds and "folder.unsubscribed" in kinds


@pytest.mark.slapd
def test_users_are_recorded_by_stable_directory_id(tmp_path, cyrus_server, slapd):
    from vault.config import Config
    from vault.directory import Directory

    config = Config.defaults(tmp_path / "dir")
    config.values["ldap"].update(
        url=slapd.url, base_dn=slapd.suffix, bind_dn=slapd.admin_dn, bind_password=slapd.admin_password
    )
    directory = Directory.from_config(config)
    live = LiveArchive(tmp_path / "vault", cyrus_server, directory=directory)
    live.skip_hook_events()
    try:
        client = cyrus_server.imap("alice")
        client.append("INBOX", r"(\Flagged)", None, mail("by id"))
        client.logout()
        wait_for_event(cyrus_server, lambda e: e["event"] == "Logout" and e.get("user") == "alice")
        quiet(cyrus_server)
        live.feed_new_hook_events()
        alice_id = slapd.entry_uuid(f"uid=alice,{slapd.people}")
        entries = [e for e in live.vault.ledger.entries() if e.data.get("user") == "alice"]
        assert entries and {e.actor for e in entries} == {alice_id}
        assert {e.kind for e in entries} >= {"session.login", "message.appended", "session.logout"}
    finally:
        live.close()
        directory.close()
