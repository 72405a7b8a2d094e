"""The import's read-ahead process (readahead.py): it reads what the writer would read, refuses
what the writer would refuse, sends each content's bytes once a run, and nothing depends on it."""

from __future__ import annotations

import hashlib
import os
import signal
import time

from tests.core.helpers import init_vault, write_maildir
from tests.index.test_bulk_import import committed
from tests.index.test_indexer import mail
from vault.archive import Vault
from vault.config import Config
from vault.ingest.importers.importer import Importer, import_sources
from vault.ingest.importers.readahead import Read, ReadAhead
from vault.ingest.importers.tree import SourceTree


def _items(home) -> dict[str, list[tuple[str, int]]]:
    """Each folder's (blob, size) of its live items, by folder name."""
    with Vault.open(Config.load(home)) as vault:
        out = {}
        for name in ("user/a", "user/b"):
            folder = vault.catalog.folder_id(name)
            rows = vault.catalog.live_items(folder) if folder else []
            out[name] = sorted((row["blob"], row["size"]) for row in rows)
        return out


def _wait_gone(pid: int) -> None:
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split()[2] == "Z":  # killed, not yet reaped by us
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} still runs")


def test_reads_what_the_writer_reads_and_sends_each_content_once(tmp_path):
    one, two = mail(1, "one", "alpha"), mail(2, "two", "beta")
    box = write_maildir(tmp_path / "box", {"1:2,": one, "2:2,": two, "3:2,": one})
    os.symlink("/etc/passwd", box / "cur" / "4:2,")
    os.mkfifo(box / "cur" / "5:2,")
    tree = SourceTree(box)
    ahead = ReadAhead()
    try:
        name = ahead.tree(tree)
        ticket = ahead.submit(name, [("cur", n) for n in ("1:2,", "2:2,", "3:2,", "4:2,", "5:2,", "6:2,")])
        got = ahead.answer(ticket)
    finally:
        ahead.close()
    assert got[0] == Read(
        one, "sha256:" + hashlib.sha256(one).hexdigest(), len(one), "<m1@example.org>", True
    )
    assert isinstance(got[1], Read) and got[1].data == two
    # the same content again: its bytes are not sent twice
    assert got[2] == Read(None, got[0].bid, len(one), "<m1@example.org>", True)
    assert isinstance(got[3], OSError) and "symbolic link" in str(got[3].strerror)
    assert isinstance(got[4], OSError) and "FIFO" in str(got[4].strerror)
    assert isinstance(got[5], OSError) and got[5].strerror == "No such file or directory"


def test_copies_across_sources_are_stored_once_and_each_is_recorded(tmp_path):
    shared = mail(7, "shared", "gamma")
    a = write_maildir(tmp_path / "a", {"1:2,": shared, "2:2,": mail(8, "a only", "delta")})
    b = write_maildir(tmp_path / "b", {"1:2,": shared, "2:2,": shared})
    home = init_vault(tmp_path / "vault")
    with Vault.open(Config.load(home), writer=True) as vault:

        class Caller:
            actor, on_behalf_of = "test", None

        reports, failed = import_sources(vault, Caller(), [(str(a), "user/a"), (str(b), "user/b")])
    assert not failed and [r.appended for r in reports] == [2, 2]
    items = _items(home)
    bid = "sha256:" + hashlib.sha256(shared).hexdigest()
    assert items["user/b"] == [(bid, len(shared))] * 2
    assert (bid, len(shared)) in items["user/a"]
    with Vault.open(Config.load(home)) as vault:
        assert vault.store.get(bid) == shared
    # two contents indexed, current with the 8 entries (2 folders, 4 appends, 2 runs)
    assert committed(Config.load(home), 8) == (2, None)


def test_an_import_whose_read_ahead_died_reads_everything_itself(tmp_path):
    messages = {f"{n}:2,": mail(n, f"subject {n}", f"word{n}") for n in range(60)}
    box = write_maildir(tmp_path / "box", messages)
    homes = {}
    for how in ("alive", "killed"):
        home = homes[how] = init_vault(tmp_path / how)
        ahead = ReadAhead()
        try:
            if how == "killed":
                assert ahead.pid is not None
                os.kill(ahead.pid, signal.SIGKILL)
                _wait_gone(ahead.pid)
            with Vault.open(Config.load(home), writer=True) as vault:
                report = Importer(vault, box, "user/a", readahead=ahead).run()
        finally:
            ahead.close()
        assert report.appended == 60 and not report.problems
    assert _items(homes["killed"]) == _items(homes["alive"])
    assert sorted(b for b, _ in _items(homes["killed"])["user/a"]) == sorted(
        "sha256:" + hashlib.sha256(data).hexdigest() for data in messages.values()
    )
