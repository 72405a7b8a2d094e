"""A real Cyrus IMAP 3.6 for tests (marker ``cyrus``); see conftest.py and tests/servers/README.md.

- ``cyrus_server``: one server for the whole session, external notifier mode with the default
  /bin/sh hook (``hook_events()`` / ``wait_hook_events()`` read what it received). Tests share
  it: use your own mailbox names and unique Message-IDs, and look only at events you caused.
- ``cyrus_factory(mode=..., notify_target=..., users=...)``: a fresh server, started, stopped
  and removed at the end of the test. In ``socket``/``stream`` mode bind ``notify_target``
  (default ``server.notify_target``; create the server with ``start=False`` to learn the
  path first) and make it writable by user ``cyrus`` before delivering mail.

Servers live in /tmp/vault-test-cyrus (a symlink ``cyrus-<n>`` in the test's tmp dir points
there). Installs the Debian packages when missing; fails, never skips, when Cyrus cannot start.
"""

from __future__ import annotations

import pytest

from vault.testing.cyrus_server import CyrusError, CyrusServer, new_base_dir


def _started(server: CyrusServer) -> CyrusServer:
    try:
        server.start()
    except CyrusError as e:
        pytest.fail(str(e), pytrace=False)
    return server


def _new_server(link_dir, **kwargs) -> CyrusServer:
    base = new_base_dir()
    link = link_dir / f"cyrus-{base.name}"
    link.symlink_to(base)
    return CyrusServer(base, **kwargs)


@pytest.fixture(scope="session")
def cyrus_server(tmp_path_factory):
    server = _new_server(tmp_path_factory.mktemp("cyrus"), mode="external")
    try:
        yield _started(server)
    finally:
        server.cleanup(remove=True)


@pytest.fixture
def cyrus_factory(tmp_path):
    """``make(mode="external", notify_target=None, start=True, **kwargs) -> CyrusServer``."""
    servers: list[CyrusServer] = []

    def make(mode: str = "external", notify_target=None, start: bool = True, **kwargs) -> CyrusServer:
        server = _new_server(tmp_path, mode=mode, notify_target=notify_target, **kwargs)
        servers.append(server)
        return _started(server) if start else server

    yield make
    for server in servers:
        server.cleanup(remove=True)
