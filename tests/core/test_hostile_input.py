"""Hostile input (issue 14, item 6): every case ends in "caught" or "clear error, nothing lost".

Queries nested past any sense, times outside what a time can hold, restores before a folder
existed: each is one clear error line (no traceback), exit non-zero, and the vault verifies
and restores as before.
"""

from __future__ import annotations

import os

import pytest

from tests.core.helpers import init_vault, make_maildir, read_maildir, sha
from tests.fixtures.corpus import message_files
from vault.testing.cli import vaultctl_run


@pytest.fixture
def vault_with_mail(tmp_path, spamassassin_dir):
    home = init_vault(tmp_path / "vault")
    files = message_files(spamassassin_dir / "spam-1")[:10]
    box = make_maildir(tmp_path / "Maildir", files)
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    return home, {sha(f.read_bytes()) for f in files}


def clear_error(result, *words: str) -> None:
    """Exit non-zero, one ``Error: ...`` line naming ``words``, no traceback."""
    assert result.code != 0, result
    assert "Traceback" not in result.err and "Error" in result.err, result
    for word in words:
        assert word in result.err, result


def intact(home, tmp_path, expected: set[str]) -> None:
    verify = vaultctl_run(home, "verify", "--read-data")
    assert verify.code == 0, verify
    out = tmp_path / f"check-{len(os.listdir(tmp_path))}"
    assert vaultctl_run(home, "restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{out}").code == 0
    assert set(read_maildir(out)) == expected


@pytest.mark.parametrize(
    "query",
    ["(" * 3000 + "money" + ")" * 3000, "NOT " * 3000 + "money", "-" * 3000 + "money"],
    ids=["parentheses", "NOT", "minus"],
)
def test_a_query_nested_too_deep_is_refused(vault_with_mail, tmp_path, query):
    home, expected = vault_with_mail
    clear_error(vaultctl_run(home, "search", "--", query), "bad query", "more than 64 deep")
    clear_error(
        vaultctl_run(home, "search", "--export", str(tmp_path / "x"), "--", query), "more than 64 deep"
    )
    assert not (tmp_path / "x").exists()
    intact(home, tmp_path, expected)


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "99999-01-01T00:00Z"]
)
def test_out_of_range_times_are_clear_errors(vault_with_mail, tmp_path, when):
    home, expected = vault_with_mail
    out = tmp_path / "out"
    r = vaultctl_run(home, "restore", "--mailbox", "user/jane/INBOX", "--at", when, "--to", f"maildir:{out}")
    clear_error(r, "--at")
    assert not out.exists()
    clear_error(vaultctl_run(home, "audit", "--since", when), when)
    clear_error(vaultctl_run(home, "retention", "sweep", "--dry-run", "--now", when), when)
    clear_error(vaultctl_run(home, "search", f"before:{when}"), "bad query")
    intact(home, tmp_path, expected)


def test_a_restore_before_the_folder_existed_says_so(vault_with_mail, tmp_path):
    home, expected = vault_with_mail
    out = tmp_path / "out"
    r = vaultctl_run(
        home, "restore", "--mailbox", "user/jane/INBOX", "--at", "2000-01-01T00:00Z", "--to", f"maildir:{out}"
    )
    clear_error(
        r, "user/jane/INBOX did not exist yet at 2000-01-01T00:00:00.000000Z", "the archive has it from"
    )
    assert not out.exists()
    intact(home, tmp_path, expected)
