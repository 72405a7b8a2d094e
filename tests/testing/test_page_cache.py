"""The benchmarks' page-cache settling: what ``warm`` reads and what it refuses to follow."""

from __future__ import annotations

import os

import pytest

from vault.testing.page_cache import settle, warm


def test_warm_reads_every_regular_file_and_follows_no_link(tmp_path):
    (tmp_path / "cur").mkdir()
    (tmp_path / "cur" / "1:2,S").write_bytes(b"a" * 10)
    (tmp_path / "cur" / "2:2,").write_bytes(b"b" * (3 << 20))
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.write_bytes(b"c" * 99)
    os.symlink(outside, tmp_path / "cur" / "link")
    os.mkfifo(tmp_path / "cur" / "fifo")  # would block a reader forever
    assert warm(tmp_path) == (2, 10 + (3 << 20))


def test_an_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="warm, cold"):
        settle(tmp_path, "lukewarm")
