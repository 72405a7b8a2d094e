"""A collector (the real server class, on a loopback port, in a thread) for a real Cyrus."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault.config import VAULT, Config
from vault.curve.keys import init_home_keys, key_dir
from vault.ingest.collector.client import CollectorClient
from vault.ingest.collector.server import Collector, CollectorServer
from vault.ingest.cyrus.imap_admin import ImapAdmin
from vault.ingest.cyrus.spool import CyrusSpool


def start_collector(server, home: Path) -> tuple[CollectorServer, CollectorClient]:
    """The collector over CURVE with the keys of a vault ``home`` (its collector key, its
    worker on the collector allow-list), and a client of it as that home's worker."""
    admin = ImapAdmin("127.0.0.1", server.imap_port, server.admin, server.admin_password)
    if not key_dir(home).exists():
        init_home_keys(home, VAULT)
    config = Config.defaults(home)
    running = CollectorServer.from_config(
        Collector(CyrusSpool.from_imapd_conf(server.config_path), admin), config, "tcp://127.0.0.1:0"
    ).start()
    return running, CollectorClient.from_config(config, running.address)


@pytest.fixture
def collector(cyrus_server, tmp_path):
    running, client = start_collector(cyrus_server, tmp_path / "keys")
    yield client
    client.close()
    running.stop()
    running.collector.close()
