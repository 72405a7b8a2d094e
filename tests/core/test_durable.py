"""vault.durable: whole files, private from the first byte, never through a planted symlink."""

from __future__ import annotations

import os
import stat

import pytest

from vault.durable import write_file


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_file_is_private_from_its_first_byte_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        write_file(tmp_path / "secret", b"s3cr3t")
    finally:
        os.umask(old)
    assert (tmp_path / "secret").read_bytes() == b"s3cr3t"
    assert _mode(tmp_path / "secret") == 0o600
    assert os.listdir(tmp_path) == ["secret"]  # no temporary left beside it


def test_it_replaces_atomically_and_keeps_the_mode_asked_for(tmp_path):
    target = tmp_path / "current"
    write_file(target, b"g1\n", mode=0o640)
    write_file(target, b"g2\n", mode=0o640)
    assert target.read_bytes() == b"g2\n"
    assert _mode(target) == 0o640
    assert os.listdir(tmp_path) == ["current"]


def test_exclusive_never_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "key.json"
    write_file(target, b"first")
    with pytest.raises(FileExistsError):
        write_file(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["key.json"]


def test_a_symlink_planted_at_the_temporary_name_is_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    target = tmp_path / "users.json"
    (tmp_path / f".users.json.{os.getpid()}.tmp").symlink_to(victim)
    with pytest.raises(OSError):
        write_file(target, b"payload")
    assert victim.read_bytes() == b"untouched"
    assert not target.exists()


def test_large_data_is_written_whole(tmp_path):
    data = os.urandom(3 << 20)
    write_file(tmp_path / "big", data)
    assert (tmp_path / "big").read_bytes() == data
