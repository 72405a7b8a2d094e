"""vaultctl maillog import and vaultctl trace over two hosts' logs: a message relayed from an edge
host to the mail host, delivered to one recipient and bounced for another, and an archived copy
of it found by Message-ID."""

from __future__ import annotations

import json

import pytest

from tests.core.helpers import init_vault
from vault.archive import Vault
from vault.config import Config
from vault.testing.cli import vaultctl_run

from .logs import EDGE_QID, MESSAGE_ID, MX_QID, NDR_QID, write_logs


@pytest.fixture
def home(tmp_path):
    home = init_vault(tmp_path / "vault")
    mx, edge = write_logs(tmp_path)
    r = vaultctl_run(home, "maillog", "import", str(mx), str(edge), "--timezone", "UTC", "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert (report["lines"], report["stored"]) == (29, 20)
    return home


def archive(home, tmp_path) -> str:
    """Import a copy of the traced message; returns its item id as the catalog knows it."""
    source = tmp_path / "eml"
    source.mkdir()
    (source / "1.eml").write_bytes(
        f"From: erin@example.org\r\nTo: alice@feas.local\r\nMessage-ID: <{MESSAGE_ID}>\r\n"
        "Subject: traced\r\n\r\nhello\r\n".encode()
    )
    assert vaultctl_run(home, "import", str(source), "--mailbox", "user/alice").code == 0
    with Vault.open(Config.load(home)) as vault:
        [item] = vault.catalog.items_by_message_id(MESSAGE_ID)
    return item["item"]


def trace(home, *args) -> list[dict]:
    r = vaultctl_run(home, "trace", *args, "--json")
    assert r.code == 0, r
    return json.loads(r.out)


def test_import_is_idempotent_and_counts_what_it_skips(home, tmp_path):
    r = vaultctl_run(
        home, "maillog", "import", str(tmp_path / "mx.log"), str(tmp_path / "edge.log"), "--timezone", "UTC"
    )
    assert r.code == 0 and "29 line(s) read from 2 file(s)" not in r.out  # nothing new: nothing read
    (tmp_path / "junk.log").write_bytes(b"\x00\xff garbage\nNov 22 12:57:03 mx kernel: eth0 up\nNov 99 x\n")
    r = vaultctl_run(home, "maillog", "import", str(tmp_path / "junk.log"))
    assert r.code == 0, r
    assert "3 line(s) read from 1 file(s): 0 hop(s), 0 new; 1 about no message; 2 unreadable" in r.out
    assert "unreadable: 2 x no syslog header" in r.out


def test_trace_follows_the_message_across_hosts_and_to_its_bounce(home, tmp_path):
    item = archive(home, tmp_path)
    for target in (MESSAGE_ID, f"<{MESSAGE_ID}>", EDGE_QID, MX_QID):
        [route] = trace(home, target)
        assert route["queue_ids"] == sorted([f"edge:{EDGE_QID}", f"mx:{MX_QID}", f"mx:{NDR_QID}"]), target
        assert route["from"] == "erin@example.org" and route["message_ids"][0] == MESSAGE_ID
        outcome = {(d["host"], d["to"], d["status"], d["dsn"]) for d in route["deliveries"]}
        assert outcome == {
            ("edge", "alice@feas.local", "sent", "2.0.0"),
            ("mx", "alice@feas.local", "sent", "2.1.5"),
            ("mx", "nosuchuser@feas.local", "bounced", "5.1.1"),
            ("mx", "erin@example.org", "bounced", "5.4.4"),
        }  # the NDR itself bounced
        assert [(a["mailbox"], a["item"]) for a in route["archived"]] == [("user/alice", item)]
        times = [h["time"] for h in route["hops"]]
        assert times == sorted(times) and times[0].startswith("2026-11-22T12:57:01")


def test_trace_prints_hops_and_archived_copy(home, tmp_path):
    item = archive(home, tmp_path)
    r = vaultctl_run(home, "trace", MX_QID)
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0].startswith(f"== <{MESSAGE_ID}>")
    assert any("postfix/smtp" in ln and "edge" in ln and f"-> {MX_QID}" in ln for ln in lines)
    assert any("bounce notice" in ln and f"-> {NDR_QID}" in ln for ln in lines)
    assert any("bounced" in ln and "to=<nosuchuser@feas.local>" in ln and "dsn=5.1.1" in ln for ln in lines)
    assert f"archived: user/alice  item {item}  [message-id]" in r.out


def test_trace_user_and_time_window(home):
    [alice] = trace(home, "--user", "alice@feas.local")
    assert alice["message_ids"] == [MESSAGE_ID, f"20261122125706.{NDR_QID}@mx.feas.local"]  # and its bounce
    carol = trace(home, "--user", "carol@example.com")
    assert [(d["to"], d["status"]) for r in carol for d in r["deliveries"]] == [
        ("carol@example.com", "deferred")
    ]
    assert trace(home, "--user", "carol@example.com", "--until", "2026-11-22T13:00:00Z") == []
    assert len(trace(home, "--user", "erin@example.org", "--since", "2026-11-22T12:00:00Z")) == 1
    r = vaultctl_run(home, "trace", "--user", "carol@example.com")
    assert r.code == 0 and "carol@example.com deferred" in r.out and "1 message(s)" in r.out


def test_unknown_targets_and_bad_arguments_are_clear(home):
    r = vaultctl_run(home, "trace", "nobody@nowhere.example")
    assert r.code != 0 and "nothing in the imported mail logs for nobody@nowhere.example" in r.err
    r = vaultctl_run(home, "trace")
    assert r.code != 0 and "give a Message-ID, queue ID or address" in r.err
    r = vaultctl_run(home, "trace", MX_QID, "--since", "yesterday-ish")
    assert r.code != 0 and "Invalid value" in r.err
    r = vaultctl_run(home, "maillog", "import", "--timezone", "Mars/Olympus", "--follow", "x")
    assert r.code != 0 and "unknown time zone" in r.err


def test_follow_from_the_command_line_until_interrupted(tmp_path):
    import signal
    import time

    from vault.testing.cli import vaultctl_process
    from vault.trace.hops import MaillogStore

    home = init_vault(tmp_path / "vault")
    log = tmp_path / "mail.log"
    log.write_text("")
    follower = vaultctl_process(home, "maillog", "import", "--follow", str(log), "--json")
    assert follower.stderr is not None
    try:
        with log.open("a") as f:
            f.write(write_logs(tmp_path)[0].read_text())
        store = MaillogStore.from_config(Config.load(home))
        deadline = time.monotonic() + 60
        while store.count() < 11:
            assert time.monotonic() < deadline and follower.poll() is None, follower.stderr.read()
            time.sleep(0.05)
        store.close()
    finally:
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    report = json.loads(out)
    assert (report["lines"], report["stored"]) == (19, 11)


def test_a_queue_id_logged_on_two_hosts_is_followed_to_the_relay_named(home, tmp_path):
    other = tmp_path / "other.log"  # another host that happened to use the mx's queue ID
    other.write_text(
        f"Nov 22 12:57:05 backup postfix/qmgr[5]: {MX_QID}: from=<zed@example.net>, size=1, nrcpt=1 (queue active)\n"
        f"Nov 22 12:57:06 backup postfix/smtp[6]: {MX_QID}: to=<zed@example.com>, relay=none, delay=1, "
        "delays=0/0/1/0, dsn=4.4.1, status=deferred (connect refused)\n"
    )
    assert vaultctl_run(home, "maillog", "import", str(other), "--timezone", "UTC").code == 0
    [route] = trace(home, EDGE_QID)  # the edge relayed to mx.feas.local
    assert "backup" not in {h["host"] for h in route["hops"]}
    assert f"mx:{MX_QID}" in route["queue_ids"]
