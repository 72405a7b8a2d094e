"""A real, private Postfix 3.7 for tests (marker ``postfix``); see conftest.py and
tests/servers/README.md.

- ``postfix_factory(lmtp_port=..., domain="vault.test", start=True)``: a fresh instance
  (``vault.testing.postfix_server.PostfixServer``) whose smtpd listens on a free loopback port
  and which delivers mail for ``domain`` over LMTP to ``127.0.0.1:lmtp_port``; stopped and
  removed at the end of the test.
- ``postfix_server``: one such instance per test, delivering to the session's ``cyrus_server``
  (whose servername, and so the mail domain, is ``vault.test``).

Its log is ``server.maillog`` (Postfix's own ``maillog_file``, written by postlogd; no syslog).
Instances live in /tmp/vault-test-postfix (a symlink ``postfix-<n>`` in the test's tmp dir
points there). Installs Debian's postfix when missing; fails, never skips, when Postfix cannot
start. A system Postfix (``/etc/postfix``, port 25) is neither used nor disturbed.
"""

from __future__ import annotations

import pytest

from vault.testing.postfix_server import PostfixError, PostfixServer, new_base_dir


@pytest.fixture
def postfix_factory(tmp_path):
    """``make(lmtp_port, domain="vault.test", start=True, **kwargs) -> PostfixServer``."""
    servers: list[PostfixServer] = []

    def make(lmtp_port: int, domain: str = "vault.test", start: bool = True, **kwargs) -> PostfixServer:
        base = new_base_dir()
        (tmp_path / f"postfix-{base.name}").symlink_to(base)
        server = PostfixServer(base, lmtp_port=lmtp_port, domain=domain, **kwargs)
        servers.append(server)
        if start:
            try:
                server.start()
            except PostfixError as e:
                pytest.fail(str(e), pytrace=False)
        return server

    yield make
    for server in servers:
        server.cleanup(remove=True)


@pytest.fixture
def postfix_server(postfix_factory, cyrus_server):
    """A private Postfix delivering ``@vault.test`` mail to the session's Cyrus over LMTP."""
    return postfix_factory(cyrus_server.lmtp_port, domain=cyrus_server.servername)
