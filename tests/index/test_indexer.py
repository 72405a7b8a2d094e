"""The index as a store of documents: one per content however often it is imported, readers in
other processes seeing the writer's commits, folders found by every name they had, and any
query that parses runs against a real index without errors."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.corpus import message_files
from vault.archive import Vault
from vault.config import Config
from vault.entries import Kind
from vault.index.indexer import Hit, SearchIndex
from vault.index.query import QuerySyntaxError
from vault.testing.cli import vaultctl_run

REPO = Path(__file__).resolve().parents[2]


def blob_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def vaultctl(home: Path, *args: str) -> None:
    r = vaultctl_run(home, *args)
    assert r.code == 0, r


def mail(n: int, subject: str, word: str | None = None) -> bytes:
    """Message ``n``, its body ``body n WORD`` (the subject, unless ``word`` is given)."""
    return (
        f"From: sender{n}@example.org\r\nTo: jane@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <m{n}@example.org>\r\nDate: Mon, {n % 28 + 1} Feb 2026 10:00:00 +0000\r\n\r\n"
        f"body {n} {subject if word is None else word}\r\n"
    ).encode()


def test_add_once_and_read_only_refuses_writes(tmp_path):
    path = tmp_path / "index"
    with pytest.raises(FileNotFoundError, match=str(path)):
        SearchIndex.open(path)
    index = SearchIndex.open(path, writable=True)
    data = mail(1, "first")
    assert index.add(blob_of(data), data) is True
    assert index.add(blob_of(data), data) is False  # pending, not yet committed
    index.commit()
    assert index.add(blob_of(data), data) is False
    assert index.indexed(blob_of(data)) and not index.indexed(blob_of(mail(2, "other")))
    assert len(index) == 1
    reader = SearchIndex.open(path)
    with pytest.raises(RuntimeError, match="read-only"):
        reader.add(blob_of(mail(2, "x")), mail(2, "x"))
    index.clear()
    assert len(index) == 0 and len(reader) == 0
    index.close()


READER = """
import sys
sys.path.insert(0, {repo!r})
from vault.index.indexer import SearchIndex
index = SearchIndex.open({path!r})
print(len(index), flush=True)
sys.stdin.readline()
print(len(index), flush=True)
"""


def test_reader_in_another_process_sees_commits_at_once(tmp_path):
    path = tmp_path / "index"
    writer = SearchIndex.open(path, writable=True)
    writer.add(blob_of(mail(1, "a")), mail(1, "a"))
    writer.commit()
    reader = subprocess.Popen(
        [sys.executable, "-c", READER.format(repo=str(REPO), path=str(path))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None and reader.stdout is not None
    try:
        assert reader.stdout.readline().strip() == "1"
        for n in range(2, 5):
            writer.add(blob_of(mail(n, "b")), mail(n, "b"))
        writer.commit()
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "4"
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
        writer.close()


@pytest.fixture(scope="module")
def vault_home(spamassassin_dir, tmp_path_factory):
    """60 corpus messages imported twice into jane's INBOX and once into john's Archive."""
    work = tmp_path_factory.mktemp("indexer")
    source = work / "source"
    source.mkdir()
    for path in message_files(spamassassin_dir / "easy-ham-1")[:60]:
        shutil.copy(path, source / path.name)
    home = work / "vault"
    vaultctl(home, "init")
    for mailbox in ("user/jane/INBOX", "user/jane/INBOX", "user/john/Archive"):
        vaultctl(home, "import", str(source), "--mailbox", mailbox)
    return home, {blob_of(p.read_bytes()) for p in source.iterdir()}


def search(home: Path, query: str, custodian: str | None = None):
    config = Config.load(home)
    with Vault.open(config) as vault:
        index = SearchIndex.open(config.path("index"))
        return index.search(query, vault.catalog, custodian=custodian, limit=1000)


def test_one_document_per_content_however_often_imported(vault_home):
    home, blobs = vault_home
    config = Config.load(home)
    assert len(SearchIndex.open(config.path("index"))) == len(blobs)
    hits = search(home, "size:>0")
    assert {h.blob for h in hits} == blobs
    for hit in hits:
        assert sorted(hit.custodians) == ["jane", "john"]
        assert sorted(hit.folders) == ["user/jane", "user/john/Archive"]
        assert len(hit.item_ids) == 2  # the second import into jane's INBOX added nothing
    assert search(home, "size:>0", custodian="nobody") == []


def test_locations_narrow_to_the_items_that_satisfy_the_query(vault_home):
    home, blobs = vault_home
    for query, custodian, folders in [
        ("size:>0", "john", ["user/john/Archive"]),  # john's copies only, never jane's
        ("custodian:jane", None, ["user/jane"]),
        ("size:>0 -in:Archive", None, ["user/jane"]),
        ("custodian:john OR in:INBOX", None, ["user/jane", "user/john/Archive"]),
        (
            "(custodian:john in:Archive) OR (custodian:jane in:INBOX)",
            None,
            ["user/jane", "user/john/Archive"],
        ),
        ("(custodian:jane size:>0) OR (custodian:john size:<1)", None, ["user/jane"]),  # john's: no
        ("(custodian:jane size:<1) OR custodian:john", None, ["user/john/Archive"]),
    ]:
        hits = search(home, query, custodian)
        assert {h.blob for h in hits} == blobs, query
        for hit in hits:
            assert sorted(hit.folders) == folders, query
            assert len(hit.item_ids) == len(folders) and sorted(hit.custodians) == sorted(
                {f.split("/")[1] for f in folders}
            )
    # a folder of one user and a folder name of another: no single copy is both
    assert search(home, "custodian:jane in:Archive") == []
    assert search(home, "in:Archive", custodian="jane") == []
    assert search(home, "custodian:jane custodian:john") == []


def test_renamed_folder_found_by_old_and_new_name(vault_home, tmp_path):
    home = tmp_path / "renamed"
    shutil.copytree(vault_home[0], home)
    config = Config.load(home)
    with Vault.open(config, writer=True) as vault:
        archive = vault.catalog.folder_id("user/john/Archive")
        vault.record(
            Kind.FOLDER_RENAMED, item=archive, data={"old": "user/john/Archive", "name": "user/jack/Old"}
        )
        vault.commit()
    blobs = vault_home[1]
    for query in ("in:user/john/Archive", "in:Archive", "in:user/jack/Old", "in:Old", "custodian:jack"):
        hits = search(home, query)
        assert {h.blob for h in hits} == blobs, query
        assert all(h.folders == ["user/jack/Old"] and h.custodians == ["jack"] for h in hits), query
    assert search(home, "custodian:john") == search(home, "custodian:jack")  # an LDAP rename: both names


QUERY_PIECES = [
    "money",
    "razor",
    '"mailing list"',
    "from:yahoo.com",
    "subject:re",
    "body:the",
    "filename:x.pdf",
    "has:attachment",
    "size:>2K",
    "size:<=1",
    "before:2002-08-01",
    "after:2002-08-01T12:00:00-07:00",
    "in:INBOX",
    "in:Archive",
    "custodian:jane",
    "custodian:nobody",
    "messageid:<x@y>",
    "bcc:a",
    "AND",
    "OR",
    "NOT",
    "-",
    "(",
    ")",
    '"',
    "size:>" + "9" * 30,
    "before:9999-12-31",
    "after:1000-01-01",
]


@pytest.fixture(scope="module")
def mixed_home(vault_home, spamassassin_dir, tmp_path_factory):
    """vault_home plus 140 other messages in kim's INBOX: folders holding a part of the index."""
    home = tmp_path_factory.mktemp("mixed") / "vault"
    shutil.copytree(vault_home[0], home)
    kim = home.parent / "kim"
    kim.mkdir()
    for path in message_files(spamassassin_dir / "spam-1")[:140]:
        shutil.copy(path, kim / path.name)
    vaultctl(home, "import", str(kim), "--mailbox", "user/kim/INBOX")
    return home


@pytest.mark.parametrize(
    "query,custodian",
    [
        ("size:>0", "john"),
        ("custodian:jane", None),
        ("in:INBOX spamassassin", None),
        ("custodian:kim -subject:re", None),
        ("custodian:jane OR custodian:kim", None),
        ("(custodian:jane size:>0) OR (custodian:john size:<1)", None),
        ("in:Archive size:<3000", "john"),
        ("size:>0 -in:Archive", None),
    ],
)
def test_both_ways_of_finding_in_folders_agree(mixed_home, monkeypatch, query, custodian):
    """Walking the content's hits (in chunks, for few rows) and asking Tantivy for a term set
    give the same answers."""
    from vault.index import scope

    config = Config.load(mixed_home)
    with Vault.open(config) as vault:
        answers: list[tuple[int, list[Hit], list[Hit], list[Hit]]] = []
        for cost in (0, 10**9):  # 0: a term set always looks cheaper; 10**9: walking always does
            monkeypatch.setattr(scope, "TERM_SET_COST", cost)
            index = SearchIndex.open(config.path("index"))
            total = index.count(query, vault.catalog, custodian)
            one, seven, every = (
                index.search(query, vault.catalog, custodian=custodian, limit=n) for n in (1, 7, total + 1)
            )
            answers.append((total, one, seven, every))
    assert answers[0] == answers[1]
    total, one, seven, every = answers[0]
    assert 0 < total == len(every) and one == every[:1] and seven == every[:7]


def test_negated_folders_exclude_content_held_only_there(mixed_home, vault_home):
    kim = {h.blob for h in search(mixed_home, "custodian:kim")}
    assert len(kim) == 140 and not kim & vault_home[1]
    assert {h.blob for h in search(mixed_home, "size:>0 -custodian:kim")} == vault_home[1]
    assert {h.blob for h in search(mixed_home, "-in:kim/INBOX OR custodian:kim")} == vault_home[1] | kim
    assert search(mixed_home, "-custodian:kim -custodian:jane -custodian:john") == []


def test_long_lived_reader_sees_new_mail_in_known_folders(vault_home, spamassassin_dir, tmp_path):
    home = tmp_path / "growing"
    shutil.copytree(vault_home[0], home)
    config = Config.load(home)
    with Vault.open(config) as vault:
        index = SearchIndex.open(config.path("index"))
        before = {h.blob for h in index.search("custodian:jane", vault.catalog, limit=1000)}
        assert before == vault_home[1]
        more = tmp_path / "more"
        more.mkdir()
        for path in message_files(spamassassin_dir / "easy-ham-1")[60:65]:
            shutil.copy(path, more / path.name)
        vaultctl(home, "import", str(more), "--mailbox", "user/jane/INBOX")
        after = {h.blob for h in index.search("custodian:jane", vault.catalog, limit=1000)}
        assert after == before | {blob_of(p.read_bytes()) for p in more.iterdir()}
        assert index.count("custodian:john", vault.catalog) == len(before)


@pytest.fixture(scope="module")
def opened(vault_home):
    config = Config.load(vault_home[0])
    with Vault.open(config) as vault:
        yield vault, SearchIndex.open(config.path("index")), vault_home[1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(QUERY_PIECES), min_size=1, max_size=8).map(" ".join))
def test_any_parsed_query_runs(opened, query):
    vault, index, blobs = opened
    try:
        hits = index.search(query, vault.catalog, limit=1000)
    except QuerySyntaxError:
        return
    assert {h.blob for h in hits} <= blobs
    assert index.count(query, vault.catalog) == len(hits)


def test_second_writer_is_refused_clearly(tmp_path):
    from vault.index.indexer import IndexBusy

    first = SearchIndex.open(tmp_path / "index", writable=True)
    with pytest.raises(IndexBusy, match="one writer at a time"):
        SearchIndex.open(tmp_path / "index", writable=True)
    first.close()
    SearchIndex.open(tmp_path / "index", writable=True).close()


DEFERRING_WRITER = """
import os, sys
from pathlib import Path
from vault.archive import Vault
from vault.config import Config
from vault.ingest.importers.importer import Importer

vault = Vault.open(Config.load(sys.argv[1]), writer=True)
vault.index_commit_interval = 3600  # as live ingest's committer: the index commits later
for n, box in enumerate(sys.argv[2:]):
    Importer(vault, box, f"user/jane/box{n}").run()
if os.environ.get("FLUSH"):
    vault.flush_index()
os._exit(0)  # dies without closing: whatever was not flushed is not in the index's files
"""


def test_deferred_index_commits_are_flushed_or_caught_up_after_a_crash(tmp_path):
    from tests.core.helpers import init_vault, write_maildir

    boxes = [
        write_maildir(
            tmp_path / f"box{b}", {f"{n}.test:2,S": mail(10 * b + n, f"batch{b}") for n in range(3)}
        )
        for b in range(3)
    ]

    def searchable(home) -> int:
        return SearchIndex.open(Config.load(home).path("index")).count(
            "body", Vault.open(Config.load(home)).catalog
        )

    for flush, expected in (("1", 9), ("", 3)):  # the first import's commit was due, the others deferred
        home = init_vault(tmp_path / f"vault{flush or 0}")
        done = subprocess.run(
            [sys.executable, "-c", DEFERRING_WRITER, str(home), *map(str, boxes)],
            cwd=REPO,
            env={**__import__("os").environ, "FLUSH": flush},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert searchable(home) == expected
        Vault.open(Config.load(home), writer=True).close()  # the next writer catches the index up
        assert searchable(home) == 9
