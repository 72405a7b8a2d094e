"""An import is one bulk run (Vault.bulk): the search index commits every [import]
index_commit_docs documents and when the run ends, text extracted in a worker process. When vaultctl import
returns, a search finds every message of every source, and the index is not behind."""

from __future__ import annotations

import json
import os
import signal

from tests.core.helpers import init_vault, write_maildir
from tests.index.test_indexer import mail as indexer_mail
from vault.config import Config
from vault.index.indexer import SearchIndex
from vault.store.ledger import Ledger
from vault.testing.cli import vaultctl_run


def committed(config: Config, ledger_size: int) -> tuple[int, str | None]:
    """What another handle on the index sees (commits only): its documents, and what it finds
    wrong against a ledger of ``ledger_size`` entries (None: current)."""
    reader = SearchIndex.open(config.path("index"))
    try:
        return len(reader), reader.state_problem(ledger_size)
    finally:
        reader.close()


def mail(n: int, subject: str) -> bytes:
    return indexer_mail(n, subject, f"word{n}")


def test_a_search_right_after_an_import_finds_every_source(tmp_path):
    commit_docs = 40
    per_box = commit_docs // 2 + 7  # three boxes: index commits mid-run and at its end
    shared = mail(99999, "shared")  # the same content in every box: one document
    boxes = [
        write_maildir(
            tmp_path / f"box{b}",
            {
                **{f"{n}.test:2,S": mail(b * per_box + n, f"box{b}") for n in range(per_box)},
                "shared.test:2,S": shared,
            },
        )
        for b in range(3)
    ]
    home = init_vault(tmp_path / "vault", **{"import.index_commit_docs": commit_docs})
    r = vaultctl_run(home, "import", *map(str, boxes), "--mailbox", "user/{name}/INBOX")
    assert r.code == 0, r

    for b in range(3):
        found = json.loads(vaultctl_run(home, "search", f"subject:box{b}", "--json").out)
        assert found["total"] == per_box
    last = json.loads(vaultctl_run(home, "search", f"word{3 * per_box - 1}", "--json").out)
    assert last["total"] == 1  # the very last message imported
    both = json.loads(vaultctl_run(home, "search", "subject:shared", "--json").out)
    assert both["total"] == 1 and len(both["hits"][0]["folders"]) == 3

    config = Config.load(home)
    ledger = Ledger.from_config(config)
    try:
        assert committed(config, ledger.size) == (3 * per_box + 1, None)  # up to the last entry
    finally:
        ledger.close()


def test_the_index_is_current_when_importer_run_returns(tmp_path):
    from vault.archive import Vault
    from vault.ingest.importers.importer import Importer

    box = write_maildir(tmp_path / "box", {f"{n}.test:2,S": mail(n, "run") for n in range(30)})
    home = init_vault(tmp_path / "vault")
    config = Config.load(home)
    vault = Vault.open(config, writer=True)
    try:
        assert Importer(vault, box, "user/jane").run().appended == 30
        assert committed(config, vault.ledger.size) == (30, None)
    finally:
        vault.close()


def test_an_import_whose_worker_died_stores_and_indexes_everything(tmp_path):
    from vault.archive import Vault
    from vault.ingest.importers.importer import Importer

    box = write_maildir(tmp_path / "box", {f"{n}.test:2,S": mail(n, "orphan") for n in range(40)})
    home = init_vault(tmp_path / "vault")
    vault = Vault.open(Config.load(home), writer=True)
    try:
        with vault.bulk():
            assert vault.index is not None and vault.index.pool is not None
            pid = vault.index.pool.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            assert Importer(vault, box, "user/jane").run().appended == 40
    finally:
        vault.close()
    r = vaultctl_run(home, "verify", "--read-data")
    assert r.code == 0, r
    assert json.loads(vaultctl_run(home, "search", "subject:orphan", "--json").out)["total"] == 40


def test_text_still_on_its_way_is_indexed_later_and_a_crash_redoes_it(tmp_path):
    """A bounded index commit mid-run does not wait for the worker's text: it commits without
    those documents and keeps applied_seq before them; the run's end adds and commits them."""
    from vault.archive import Vault
    from vault.ingest.importers.importer import Importer

    box = write_maildir(tmp_path / "box", {f"{n}.test:2,S": mail(n, "later") for n in range(12)})
    home = init_vault(tmp_path / "vault", **{"import.index_commit_docs": 5})
    config = Config.load(home)
    vault = Vault.open(config, writer=True)
    try:
        with vault.bulk():
            assert vault.index is not None and vault.index.pool is not None
            pid = vault.index.pool.pid
            assert pid is not None
            vault.store.ahead = None  # frames made here: only the text waits for the stopped worker
            os.kill(pid, signal.SIGSTOP)
            try:
                assert Importer(vault, box, "user/jane").run().appended == 12
                reader = SearchIndex.open(config.path("index"))
                try:
                    assert len(reader) == 0  # committed without the waiting documents
                    assert reader.applied_seq < vault.ledger.size  # so a crash now redoes them
                finally:
                    reader.close()
            finally:
                os.kill(pid, signal.SIGCONT)
        assert committed(config, vault.ledger.size) == (12, None)
    finally:
        vault.close()
