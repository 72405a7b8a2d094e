"""The tar stream a restore or an export travels in from the vault service to its caller:
read back exactly, and refused when cut short or when it names a path outside the target."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from vault.restore.pointintime import Message
from vault.restore.stream import (
    StreamError,
    extract_export,
    read_restore,
    restore_members,
    tar_stream,
)

MESSAGES = [
    Message("mbx:1:1", 1, ["\\Seen", "$Label"], "2026-01-02T03:04:05.123456Z", b"From: a\r\n\r\nbody\r\n"),
    Message("mbx:1:2", 2, [], None, b"no newline at the end"),
    Message("mbx:1:3", 3, ["\\Flagged"], "2021-12-31T23:59:59Z", bytes(range(256)) * 400),
]


def restore_bytes(messages: list[Message], members: int | None = None) -> bytes:
    head = {"kind": "restore", "members": len(messages) if members is None else members, "purged": []}
    return b"".join(tar_stream(head, restore_members(messages)))


def test_a_restore_stream_gives_back_every_message_and_its_metadata():
    head, messages = read_restore(io.BytesIO(restore_bytes(MESSAGES)))
    assert head["members"] == 3
    assert list(messages) == MESSAGES


def test_a_stream_cut_short_is_refused():
    whole = restore_bytes(MESSAGES)
    for cut in (len(whole) // 4, len(whole) // 2, len(whole) * 3 // 4):  # inside the last message
        _, messages = read_restore(io.BytesIO(whole[:cut]))
        with pytest.raises(StreamError):
            list(messages)
    _, fewer = read_restore(io.BytesIO(restore_bytes(MESSAGES[:2], members=3)))
    with pytest.raises(StreamError, match="2 of 3"):
        list(fewer)


def test_a_stream_of_another_kind_or_without_its_head_is_refused():
    with pytest.raises(StreamError, match="not 'export'"):
        extract_export(io.BytesIO(restore_bytes(MESSAGES)), Path("/nonexistent/x"))
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        info = tarfile.TarInfo("manifest.json")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(StreamError, match="does not start with"):
        read_restore(io.BytesIO(plain.getvalue()))


def _export(names: list[str]) -> bytes:
    from vault.restore.stream import _member

    head = {"kind": "export", "members": len(names)}
    return b"".join(tar_stream(head, (_member(n, n.encode()) for n in names)))


def test_an_export_is_written_into_a_new_directory_and_nowhere_else(tmp_path):
    target = tmp_path / "case"
    head = extract_export(io.BytesIO(_export(["manifest.json", "messages/000001-ab.eml"])), target)
    assert head["kind"] == "export"
    assert (target / "messages" / "000001-ab.eml").read_bytes() == b"messages/000001-ab.eml"
    with pytest.raises(StreamError, match="not empty"):
        extract_export(io.BytesIO(_export(["manifest.json"])), target)
    for bad in ("../escape", "/etc/passwd", "messages/../../escape"):
        with pytest.raises(StreamError, match="not a plain relative path"):
            extract_export(io.BytesIO(_export([bad])), tmp_path / f"new-{len(bad)}")
    assert not (tmp_path / "escape").exists()
