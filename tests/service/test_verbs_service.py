"""The everyday verbs while the vault service runs: ``show`` and ``restore --user`` are
streamed by the service within the caller's scope, audited there, and written by the caller's
own vaultctl; search pages through the service; a corrupt blob is skipped in the stream."""

from __future__ import annotations

import base64
import json
import mailbox

from tests.core.helpers import write_maildir
from tests.restore.test_verbs import corrupt_one_blob
from tests.service import test_service as running
from tests.service.test_service import OTHER, audit_entries, mail, vaultctl

service, other_user = running.service, running.other_user  # the fixtures, shared


def _import(home, tmp_path, name: str, folder: str, messages: dict[str, bytes]) -> None:
    box = write_maildir(tmp_path / name, messages)
    done = vaultctl(home, "import", str(box), "--mailbox", folder, "--json")
    assert done.returncode == 0, done.stderr


def test_show_and_a_whole_user_restore_go_through_the_service_within_the_callers_scope(
    service, other_user, tmp_path
):
    home, sock, _ = service
    env = {"VAULT_SOCKET": str(sock)}
    _import(home, tmp_path, "jane", "user/jane", {"1:2,S": mail(1, "jane", "plans")})
    _import(home, tmp_path, "mine", f"user/{OTHER}", {"2:2,": mail(2, OTHER, "mine")})
    _import(home, tmp_path, "sent", f"user/{OTHER}/Sent", {"3:2,": mail(3, "bob", "sent")})
    found = vaultctl(home, "search", "plans", "--output", "items", "--json")
    (janes,) = json.loads(found.stdout)["items"]
    shown = vaultctl(home, "show", janes, "--json")
    assert shown.returncode == 0, shown.stderr
    assert base64.b64decode(json.loads(shown.stdout)["base64"]) == mail(1, "jane", "plans")
    # another user may not read jane's message, and the refusal is audited
    refused = vaultctl(home, "show", janes, "--json", user=other_user, env=env)
    assert refused.returncode == 1 and "is not theirs" in json.loads(refused.stderr)["error"]
    # their own whole mailbox, every folder, to their stdout
    theirs = vaultctl(home, "restore", "--user", OTHER, "--to", "mbox:-", "--json", user=other_user, env=env)
    assert theirs.returncode == 0, theirs.stderr
    report = json.loads(theirs.stderr)
    assert [f["mailbox"] for f in report["folders"]] == [f"user/{OTHER}", f"user/{OTHER}/Sent"]
    (tmp_path / "theirs.mbox").write_text(theirs.stdout)
    assert sorted(m["Subject"] for m in mailbox.mbox(tmp_path / "theirs.mbox")) == ["mine", "sent"]
    janes_all = vaultctl(
        home, "restore", "--user", "jane", "--to", "mbox:-", "--json", user=other_user, env=env
    )
    assert janes_all.returncode == 1 and janes_all.stdout == ""
    entries = audit_entries(home)
    assert [e["data"]["items"] for e in entries if e["kind"] == "mail.read"] == [[janes]]
    assert {e["data"]["operation"] for e in entries if e["kind"] == "access.refused"} == {
        "show",
        "restore.folders",
    }
    restores = [e for e in entries if e["kind"] == "restore.done"]
    assert {(e["actor"], e["data"]["mailbox"]) for e in restores} == {
        (OTHER, f"user/{OTHER}"),
        (OTHER, f"user/{OTHER}/Sent"),
    }


def test_search_pages_through_the_service(service, tmp_path):
    home, _, _ = service
    _import(home, tmp_path, "many", "user/jane", {f"{n}:2,": mail(n, "jane", f"memo {n}") for n in range(5)})
    every = json.loads(vaultctl(home, "search", "memo", "--json").stdout)
    pages = [
        json.loads(vaultctl(home, "search", "memo", "--limit", "2", "--offset", str(o), "--json").stdout)
        for o in (0, 2, 4)
    ]
    assert [h["blob"] for p in pages for h in p["hits"]] == [h["blob"] for h in every["hits"]]
    assert all(p["total"] == 5 for p in pages)


def test_a_restore_through_the_service_skips_a_corrupt_blob_and_exits_3(service, tmp_path):
    home, _, _ = service
    _import(home, tmp_path, "box", "user/jane", {f"{n}:2,": mail(n, "jane", f"memo {n}") for n in range(4)})
    corrupt_one_blob(home)
    done = vaultctl(
        home, "restore", "--mailbox", "user/jane", "--to", f"maildir:{tmp_path / 'out'}", "--json"
    )
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert len(report["unreadable"]) == 1 and report["restored"] == 3
    assert len(list(mailbox.Maildir(tmp_path / "out"))) == 3
