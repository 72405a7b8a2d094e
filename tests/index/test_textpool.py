"""The bulk worker process: its text answers as extract() does, its frames are the store's own
(the store checks each), and a worker that died answers nothing (the writer then extracts
the text and compresses the frames itself)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import zstandard

from tests.fixtures.corpus import message_files
from vault.index.text import extract
from vault.index.textpool import CHUNK_MESSAGES, TextPool
from vault.store.backends.base import StoreError
from vault.store.backends.local import LocalBackend
from vault.store.cas import ContentStore


def test_pool_answers_as_extract(edge_cases_dir):
    messages = {f"blob{n}": path.read_bytes() for n, path in enumerate(message_files(edge_cases_dir))}
    pool = TextPool()
    try:
        for blob, data in messages.items():
            pool.submit(blob, data)
            pool.submit(blob, data)  # offered twice: extracted once, answered once
        for blob, data in messages.items():
            assert pool.take(blob) == extract(data), blob
            assert pool.take(blob) is None
        assert pool.take("never offered") is None
    finally:
        pool.close()


def test_forgotten_offers_are_not_answered():
    pool = TextPool()
    try:
        pool.submit("a", b"Subject: a\n\nbody a\n")
        pool.forget()
        assert pool.take("a") is None
        pool.submit("b", b"Subject: b\n\nbody b\n")
        fields = pool.take("b")
        assert fields is not None and fields.subject == "b"
    finally:
        pool.close()


def test_a_dead_worker_answers_nothing():
    pool = TextPool()
    try:
        pool.submit("a", b"Subject: a\n\nbody a\n")
        assert pool.take("a") is not None
        assert pool.pid is not None
        os.kill(pool.pid, signal.SIGKILL)
        for n in range(40):  # enough to fill a chunk and send it to no one
            pool.submit(f"b{n}", b"Subject: b\n\nbody b\n")
        assert pool.take("b0") is None
    finally:
        pool.close()


# ------------------------------------------------------------ frames for the store


@pytest.fixture(scope="module")
def mail(spamassassin_dir):
    return [f.read_bytes() for f in message_files(spamassassin_dir / "easy-ham-1")[:300]]


def _store(place: Path, **kw) -> ContentStore:
    return ContentStore(LocalBackend(place / "blobs"), place / "index.sqlite", dictionary_samples=100, **kw)


def _frames(store: ContentStore) -> list[tuple[str, int, str | None]]:
    return sorted((m.blob, m.length, m.dict) for _, m in store.located())


def test_the_worker_compresses_as_the_writer_would(mail):
    pool = TextPool()
    try:
        pool.compressor("plain", 3, None)
        asked = mail[: 3 * CHUNK_MESSAGES]  # two chunks go to the worker; the third is not sent yet
        for n, data in enumerate(asked):
            pool.compress(f"blob{n}", data, "plain")
        plain = zstandard.ZstdCompressor(level=3)
        soon = time.monotonic() + 60
        for n, data in enumerate(asked[: 2 * CHUNK_MESSAGES]):
            assert pool.frame(f"blob{n}", soon) == plain.compress(data)
            assert pool.frame(f"blob{n}", soon) is None  # taken
        assert pool.frame(f"blob{len(asked) - 1}", soon) is None  # not sent: withdrawn, made here
        assert pool.frame("never asked", soon) is None
    finally:
        pool.close()


def test_a_store_compressing_ahead_stores_the_same_frames(tmp_path, mail):
    here, ahead = _store(tmp_path / "here"), _store(tmp_path / "ahead")
    pool = TextPool()
    try:
        ahead.ahead = pool
        assert here.ensure_dictionary(mail[:150]) is not None
        assert ahead.ensure_dictionary(mail[:150], background=True) is None  # trained meanwhile
        assert ahead.training
        for store in (here, ahead):
            ids = [store.put(m) for m in mail + mail[:20]]  # twenty put twice: stored once
            store.flush()
        ahead.ahead = None
    finally:
        pool.close()
    assert not ahead.training and ahead.dictionary == here.dictionary
    assert all(ahead.get(i) == m for i, m in zip(ids, mail))
    assert _frames(ahead) == _frames(here)
    assert ahead.stats()["blobs"] == len(mail) + 1  # + the dictionary


def test_a_store_whose_worker_died_compresses_itself(tmp_path, mail):
    store = _store(tmp_path)
    pool = TextPool()
    try:
        assert pool.pid is not None
        os.kill(pool.pid, signal.SIGKILL)
        store.ahead = pool
        ids = [store.put(m) for m in mail[:120]]
        store.flush()
        store.ahead = None
    finally:
        pool.close()
    assert all(store.get(i) == m for i, m in zip(ids, mail))
    assert not store.check(set(ids))


def test_blobs_put_ahead_and_discarded_are_not_stored(tmp_path, mail):
    store = _store(tmp_path)
    pool = TextPool()
    try:
        store.ahead = pool
        kept = store.put(mail[0])
        store.flush()
        dropped = store.put(mail[1])
        assert store.exists(dropped) and store.get(dropped) == mail[1]
        store.discard()
        store.flush()
        store.ahead = None
    finally:
        pool.close()
    assert store.exists(kept) and not store.exists(dropped)
    assert [b for b, _, _ in _frames(store)] == [kept]


class _WrongFrames:
    """A worker gone wrong: every frame it makes is another message's."""

    def compressor(self, name: str, level: int, dictionary: bytes | None) -> None:
        pass

    def compress(self, blob: str, data: bytes, compressor: str) -> None:
        pass

    def frame(self, blob: str, until: float | None = None) -> bytes | None:
        return zstandard.ZstdCompressor().compress(b"Subject: not this one\n\n")

    def forget_frames(self) -> None:
        pass


def test_a_frame_made_elsewhere_that_is_not_the_blob_is_refused(tmp_path, mail):
    store = _store(tmp_path)
    store.ahead = _WrongFrames()
    store.put(mail[0])
    with pytest.raises(StoreError, match="does not decompress to the original bytes"):
        store.flush()
    assert _frames(store) == []
