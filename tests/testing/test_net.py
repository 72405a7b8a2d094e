"""The test harness's port picker: ports a server can bind, never one handed out twice,
never in the kernel's ephemeral range (where an outgoing connection may take it first)."""

from __future__ import annotations

import socket

from vault.testing.net import ephemeral_range, free_port


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    low, _ = ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(port < low for port in ports)
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports[-1]))
        server.listen()
