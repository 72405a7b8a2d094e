"""A Cyrus folder built offline (cyrus.index written to the v17 layout): what the server
changes between runs reaches the archive, and a changed UIDVALIDITY is reported."""
from __future__ import annotations

import json

from tests.core.helpers import init_vault, vaultctl_run
from tests.importers.test_decoders_fuzz import CYRUS_DLIST_HEADER
from tests.ingest.collector.test_spool_formats import _index


def _folder(root, uidvalidity: int):
    root.mkdir(exist_ok=True)
    (root / "cyrus.header").write_bytes(CYRUS_DLIST_HEADER)
    (root / "cyrus.index").write_bytes(_index(uidvalidity, 5, [(7, 1_700_000_000, 40, 0x10, 0b10, 5)]))
    (root / "7.").write_bytes(b"Subject: seven\r\n\r\nbody\r\n")
    return root


def test_a_changed_uidvalidity_is_reported(tmp_path):
    home = init_vault(tmp_path / "vault")
    box = _folder(tmp_path / "box", 4242)
    first = json.loads(vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json").out)
    assert (first["appended"], first["problems"]) == (1, [])
    [entry] = [e for e in json.loads(vaultctl_run(home, "log", "--mailbox", "user/jane/INBOX", "--json").out)
               if e["kind"] == "message.appended"]
    assert entry["item"] == "fngchpsey72ifuhlby002uup:4242:7"
    assert sorted(entry["data"]["flags"]) == ["Custom2", "\\Seen"]
    _folder(box, 4343)  # the mailbox was reconstructed: a new UIDVALIDITY
    again = json.loads(vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json").out)
    assert [p["path"] for p in again["problems"]] == [str(box)]
    assert "4343" in again["problems"][0]["reason"] and "4242" in again["problems"][0]["reason"]
