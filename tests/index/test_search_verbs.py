"""Search's everyday options through the CLI, --json parsed: word* prefixes, is:flagged/seen/
deleted as at --at, --output items|messageids|files, --offset/--limit paging, and the mark on
hits whose every copy is expunged."""

from __future__ import annotations

import json
import time

import pytest

from tests.core.helpers import init_vault, set_maildir_flags
from vault.model import format_time, now
from vault.testing.cli import vaultctl_run

WORDS = ["money", "monday", "monitor", "lemon", "moon"]


def mail(n: int, word: str) -> bytes:
    return (
        f"From: s{n}@example.org\nTo: jane@example.org\nSubject: note {n} {word}\n"
        f"Message-ID: <sv{n}@example.org>\nDate: Mon, {n + 1} Feb 2026 10:00:00 +0000\n\nabout {word}\n"
    ).encode()


def search(home, *args: str, code: int = 0) -> dict:
    r = vaultctl_run(home, "search", *args, "--json")
    assert r.code == code, r
    return json.loads(r.out if code == 0 else r.err)


@pytest.fixture
def vault(tmp_path):
    """jane's INBOX with one message per word; 0 and 1 flagged after time ``t1``, 2 seen from
    the start; john's INBOX holds a copy of message 0, unflagged; message 4 is expunged."""
    home = init_vault(tmp_path / "vault")
    box = tmp_path / "jane"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    for n, word in enumerate(WORDS):
        set_maildir_flags(box, n, ["\\Seen"] if n == 2 else [], data=mail(n, word))
    john = tmp_path / "john"
    for sub in ("cur", "new", "tmp"):
        (john / sub).mkdir(parents=True)
    set_maildir_flags(john, 0, [], data=mail(0, WORDS[0]))
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    assert vaultctl_run(home, "import", str(john), "--mailbox", "user/john/INBOX").code == 0
    time.sleep(0.01)
    t1 = format_time(now())
    time.sleep(0.01)
    for n in (0, 1):
        set_maildir_flags(box, n, ["\\Flagged"])
    (box / "cur" / "4.test:2,").unlink()
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    return home, t1


def subjects(found: dict) -> list[str]:
    return sorted(h["subject"] for h in found["hits"])


def test_a_prefix_finds_the_words_that_start_so_and_only_those(vault):
    home, _ = vault
    assert subjects(search(home, "mon*")) == ["note 0 money", "note 1 monday", "note 2 monitor"]
    assert subjects(search(home, "subject:mo*")) == [
        "note 0 money",
        "note 1 monday",
        "note 2 monitor",
        "note 4 moon",
    ]
    assert subjects(search(home, "mon* -body:monday")) == ["note 0 money", "note 2 monitor"]
    assert search(home, "lemo*")["total"] == 1 and search(home, "xyz*")["total"] == 0
    bad = search(home, "from:s1@example*", code=1)
    assert bad["exit_code"] == 1 and "a prefix is one word" in bad["error"]


def test_is_flagged_is_judged_per_copy_as_at_the_search_time(vault):
    home, t1 = vault
    now_flagged = search(home, "is:flagged")
    assert subjects(now_flagged) == ["note 0 money", "note 1 monday"]
    # john's copy of message 0 is not flagged: only jane's is reported
    (money,) = [h for h in now_flagged["hits"] if h["subject"] == "note 0 money"]
    assert money["folders"] == ["user/jane"] and len(money["item_ids"]) == 1  # Cyrus's name of the INBOX
    assert search(home, "is:flagged", "--at", t1)["total"] == 0
    assert subjects(search(home, "is:seen")) == ["note 2 monitor"]
    assert subjects(search(home, "custodian:jane -is:flagged")) == [
        "note 2 monitor",
        "note 3 lemon",
        "note 4 moon",
    ]
    assert subjects(search(home, "is:flagged OR is:seen", "--at", t1)) == ["note 2 monitor"]
    assert subjects(search(home, "money -is:flagged")) == ["note 0 money"]  # john's copy
    assert search(home, "money -is:flagged")["hits"][0]["folders"] == ["user/john"]
    assert search(home, "is:deleted")["total"] == 0
    assert "is:spam is not known" in search(home, "is:spam", code=1)["error"]


def test_output_prints_item_ids_message_ids_or_sources_one_per_line(vault):
    home, _ = vault
    items = vaultctl_run(home, "search", "money", "--output", "items")
    assert (
        items.code == 0 and len(items.out.split()) == 2 and all(i.count(":") == 2 for i in items.out.split())
    )
    ids = vaultctl_run(home, "search", "mon*", "--output", "messageids")
    assert sorted(ids.out.split()) == ["<sv0@example.org>", "<sv1@example.org>", "<sv2@example.org>"]
    files = search(home, "money", "--output", "files")["files"]
    assert sorted(f.split(" ")[0] for f in files) == sorted(
        [f"maildir:{home.parent / 'jane'}", f"maildir:{home.parent / 'john'}"]
    )


def test_pages_cover_every_hit_once_in_order(vault):
    home, _ = vault
    everything = search(home, "note", "--limit", "100")
    assert everything["total"] == 5
    pages = [search(home, "note", "--limit", "2", "--offset", str(o)) for o in (0, 2, 4, 6)]
    assert [len(p["hits"]) for p in pages] == [2, 2, 1, 0]
    assert all(p["total"] == 5 for p in pages)
    assert [h["blob"] for p in pages for h in p["hits"]] == [h["blob"] for h in everything["hits"]]
    text = vaultctl_run(home, "search", "note", "--limit", "2", "--offset", "2")
    assert "3-4 of 5 shown" in text.out
    assert vaultctl_run(home, "search", "note", "--offset", "-1").code == 2


def test_a_hit_whose_every_copy_is_expunged_is_marked(vault):
    home, _ = vault
    (moon,) = search(home, "moon")["hits"]
    assert moon["expunged"] is True
    assert [h["expunged"] for h in search(home, "money")["hits"]] == [False]
    table = vaultctl_run(home, "search", "moon OR lemon")
    assert "note 4 moon [expunged]" in table.out and "note 3 lemon [expunged]" not in table.out
