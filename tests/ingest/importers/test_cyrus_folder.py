"""A Cyrus folder built offline (cyrus.index written to the v17 layout): what the server
changes between runs reaches the archive; a changed UIDVALIDITY (the folder recreated on the
server, its UIDs now naming other messages) is reported and archived under the new numbering."""

from __future__ import annotations

import json

from tests.core.helpers import init_vault
from tests.ingest.collector.test_spool_formats import _index
from tests.ingest.importers.test_decoders_fuzz import CYRUS_DLIST_HEADER
from vault.testing.cli import vaultctl_run


def _folder(root, uidvalidity: int, body: bytes = b"Subject: seven\r\n\r\nbody\r\n"):
    root.mkdir(exist_ok=True)
    (root / "cyrus.header").write_bytes(CYRUS_DLIST_HEADER)
    (root / "cyrus.index").write_bytes(_index(uidvalidity, 5, [(7, 1_700_000_000, 40, 0x10, 0b10, 5)]))
    (root / "7.").write_bytes(body)
    return root


def test_a_changed_uidvalidity_is_reported_and_renumbers(tmp_path):
    home = init_vault(tmp_path / "vault")
    box = _folder(tmp_path / "box", 4242)
    first = json.loads(vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json").out)
    assert (first["appended"], first["problems"]) == (1, [])
    [entry] = [
        e
        for e in json.loads(vaultctl_run(home, "log", "--mailbox", "user/jane/INBOX", "--json").out)
        if e["kind"] == "message.appended"
    ]
    assert entry["item"] == "fngchpsey72ifuhlby002uup:4242:7"
    assert sorted(entry["data"]["flags"]) == ["Custom2", "\\Seen"]
    _folder(box, 4343)  # the mailbox was reconstructed: a new UIDVALIDITY
    again = json.loads(vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json").out)
    assert [p["path"] for p in again["problems"]] == [str(box)]
    assert "4343" in again["problems"][0]["reason"] and "4242" in again["problems"][0]["reason"]
    # the old numbering's item is expunged, the folder's message archived under the new one
    assert (again["expunged"], again["appended"]) == (1, 1)
    log = json.loads(vaultctl_run(home, "log", "--mailbox", "user/jane/INBOX", "--json").out)
    assert [(e["kind"], e["item"]) for e in log if e["kind"].startswith("message.")][-2:] == [
        ("message.appended", "fngchpsey72ifuhlby002uup:4343:7"),
        ("message.expunged", "fngchpsey72ifuhlby002uup:4242:7"),
    ]
    # unchanged since: nothing recorded, nothing reported; UID 7 now another message: a new item
    third = json.loads(vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json").out)
    assert (third["appended"], third["expunged"], third["problems"]) == (0, 0, [])
    _folder(box, 4444, body=b"Subject: another seven\r\n\r\nother\r\n")
    fourth = json.loads(vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json").out)
    assert (fourth["appended"], fourth["expunged"]) == (1, 1)
    restored = tmp_path / "restored"
    assert (
        vaultctl_run(home, "restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{restored}").code == 0
    )
    assert [p.read_bytes() for p in (restored / "cur").iterdir()] == [
        b"Subject: another seven\r\n\r\nother\r\n"
    ]
