"""The index's text extraction in a worker process answers as extract() does, and a worker
that died answers nothing (the writer then extracts the text itself)."""

from __future__ import annotations

import os
import signal

from tests.fixtures.corpus import message_files
from vault.index.text import extract
from vault.index.textpool import TextPool


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
