"""A collector (the real server class, on a loopback port, in a thread) for a real Cyrus."""

from __future__ import annotations

import pytest

from vault.ingest.collector.client import CollectorClient
from vault.ingest.collector.server import Collector, CollectorServer
from vault.ingest.cyrus.imap_admin import ImapAdmin
from vault.ingest.cyrus.spool import CyrusSpool


def start_collector(server) -> tuple[CollectorServer, CollectorClient]:
    admin = ImapAdmin("127.0.0.1", server.imap_port, server.admin, server.admin_password)
    running = CollectorServer(
        Collector(CyrusSpool.from_imapd_conf(server.config_path), admin), "tcp://127.0.0.1:0"
    ).start()
    return running, CollectorClient(running.address, timeout=20)


@pytest.fixture
def collector(cyrus_server):
    running, client = start_collector(cyrus_server)
    yield client
    client.close()
    running.stop()
    running.collector.close()
