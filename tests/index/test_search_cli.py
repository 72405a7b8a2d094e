"""vaultctl search when the index cannot be used: a clear message, never a traceback, and no
search goes unrecorded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tantivy

from tests.core.helpers import write_maildir
from vault.config import Config
from vault.index.indexer import SearchIndex
from vault.store.ledger import Ledger
from vault.testing.cli import vaultctl_run


def mail(n: int) -> bytes:
    return (
        f"From: sender{n}@example.org\r\nTo: jane@example.org\r\nSubject: money {n}\r\n"
        f"Message-ID: <m{n}@example.org>\r\nDate: Mon, {n + 1} Feb 2026 10:00:00 +0000\r\n\r\n"
        f"body {n}\r\n"
    ).encode()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("search-cli")
    box = write_maildir(work / "box", {f"{n}.test:2,S": mail(n) for n in range(5)})
    home = work / "vault"
    assert vaultctl_run(home, "init").code == 0
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    return home


@pytest.fixture
def home(built, tmp_path) -> Path:
    copy = tmp_path / "vault"
    shutil.copytree(built, copy)
    return copy


def ledger_size(home: Path) -> int:
    return Ledger.from_config(Config.load(home), writable=False).size


def refused_unrecorded(home: Path, *expected: str) -> None:
    """``vaultctl search`` exits 1 with a message naming ``expected``, not a traceback, and
    records nothing."""
    before = ledger_size(home)
    r = vaultctl_run(home, "search", "money")
    assert r.code == 1, r
    assert "Traceback" not in r.err and all(e in r.err for e in expected), r
    assert ledger_size(home) == before


def test_search_is_recorded(home):
    before = ledger_size(home)
    r = vaultctl_run(home, "search", "money", "--json")
    assert r.code == 0, r
    assert '"total": 5' in r.out
    assert ledger_size(home) == before + 1


def test_an_index_of_another_version_is_named_not_a_traceback(home):
    index = Config.load(home).path("index")
    shutil.rmtree(index)
    index.mkdir()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("other", stored=True)
    tantivy.Index(builder.build(), path=str(index))  # "built by another version"
    refused_unrecorded(home, "built by another version of vault", "vaultctl rebuild")


def test_an_index_held_by_another_writer_is_named_not_a_traceback(home):
    """A rebuild (say) holds the index's writer lock but not the ledger's: the search cannot
    record its audit entry, so it reports that instead of its results."""
    before = ledger_size(home)
    holder = SearchIndex.open(Config.load(home).path("index"), writable=True)
    try:
        refused_unrecorded(home, "open for writing elsewhere", "try again")
    finally:
        holder.close()
    # nothing was left locked: the next search runs and is recorded
    r = vaultctl_run(home, "search", "money")
    assert r.code == 0, r
    assert ledger_size(home) == before + 1
