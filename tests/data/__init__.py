"""Test data committed with the repository: one place that names where it lives.

``cyrus/`` holds ground truth captured from a real Cyrus IMAP 3.6 + Postfix + slapd (what
each file is, how it was captured and how to re-capture it: README.md beside this file);
``mail/`` holds hand-written MIME edge cases. Tests reach them only through :func:`data_file`,
so nothing reads a path outside the repository.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent


def data_file(name: str) -> Path:
    """``tests/data/<name>`` (e.g. ``"cyrus/cyrus-events.jsonl"``); fails loudly if missing,
    so a renamed or forgotten file is an error, not an empty sample set."""
    path = DATA / name
    if not path.is_file():
        raise FileNotFoundError(f"test data file {path} is missing from the repository")
    return path
