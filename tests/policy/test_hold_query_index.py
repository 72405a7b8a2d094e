"""A hold with a query asks the search index which items it covers. An index that is not
current (documents lost behind its back, behind the ledger) cannot say: the hold then keeps
every item of its custodians and dates, never fewer, and an erasure by query refuses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import tantivy

from tests.core.helpers import init_vault, vaultctl_run
from vault.index.schema import build as index_schema

WORDS = {"1": "contract", "2": "memo"}


def _vault(root: Path) -> tuple[Path, dict[str, tuple[str, str]]]:
    home = init_vault(root / "vault")
    box = root / "jane"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    for n, word in WORDS.items():
        path = box / "cur" / f"{n}.test:2,S"
        path.write_bytes(
            f"From: x{n}@example.org\r\nSubject: {word} {n}\r\nMessage-ID: <hq{n}@example.org>\r\n"
            f"Date: Mon, 1 Jan 2001 00:00:00 +0000\r\n\r\n{word} body\r\n".encode()
        )
        os.utime(path, (978350400, 978350400))  # 2001-01-01
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane").code == 0
    (home / "policies").mkdir(exist_ok=True)
    (home / "policies" / "rules.toml").write_text(
        '[[rule]]\nname = "all"\npurge_after = "90d"\nmatch = "all"\n'
    )
    placed = vaultctl_run(
        home, "hold", "create", "case-1", "--custodian", "jane", "--query", "contract", "--reason", "r"
    )
    assert placed.code == 0, placed
    hits = json.loads(vaultctl_run(home, "search", "contract OR memo", "--json").out)["hits"]
    items = {h["subject"].split()[0]: (h["item_ids"][0], h["blob"]) for h in hits}
    return home, items


def _action(home: Path, item: str) -> str:
    r = vaultctl_run(home, "retention", "explain", item, "--json")
    assert r.code == 0, r
    return json.loads(r.out)["explanation"].splitlines()[-1]


def _lose_document(home: Path, blob: str) -> None:
    live = home / "index" / (home / "index" / "current").read_text().strip()
    index = tantivy.Index(index_schema(), path=str(live))
    writer = index.writer(15_000_000, 1)
    writer.delete_documents_by_term("blob", blob)
    writer.commit()
    writer.wait_merging_threads()


def test_a_hold_query_the_index_cannot_answer_keeps_every_item_of_its_custodians(tmp_path):
    home, items = _vault(tmp_path)
    (contract, blob), (memo, _) = items["contract"], items["memo"]
    assert "keep" in _action(home, contract) and "purge" in _action(home, memo)
    _lose_document(home, blob)  # the held message's document, gone behind the index's back
    assert "keep" in _action(home, contract)
    assert "keep" in _action(home, memo)  # the hold cannot tell: it keeps all of jane's


def test_an_erasure_by_query_refuses_an_index_that_is_not_current(tmp_path):
    home, items = _vault(tmp_path)
    _lose_document(home, items["memo"][1])
    r = vaultctl_run(home, "erase", "--query", "memo", "--dry-run")
    assert r.code != 0 and "Traceback" not in r.err, r
    assert "search index" in r.err and "verify" in r.err, r
