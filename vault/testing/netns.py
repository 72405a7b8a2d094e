"""Hosts on a LAN, made (and removed) by a test: network namespaces joined on one bridge.

The namespace the test runs in is one host: it holds the bridge and the LAN's first address.
Each :meth:`Lan.host` is a network namespace of its own (its loopback up) with one end of a
veth pair; the other end, in the test's namespace, is a port of the bridge and the place to
capture that host's traffic (``Host.port``). Processes go into a host with
:meth:`Host.argv` (``ip netns exec``). Needs root and iproute2 (``ip``); names carry the
test's pid, so runs side by side do not meet, and a leftover of a killed run is replaced.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass


class NetnsError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    address: str
    port: str  # the veth end on the bridge, in the test's namespace (tcpdump -i PORT)

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host."""
        return ["ip", "netns", "exec", self.netns, *argv]


class Lan:
    """``with Lan() as lan: vault = lan.host("vault")``: this namespace is ``lan.address``."""

    def __init__(self, tag: str | None = None):
        if os.geteuid() != 0:
            raise NetnsError("network namespaces need root")
        self.tag = tag or str(os.getpid() % 100000)
        self.prefix = f"10.235.{os.getpid() % 250 + 1}"
        self.address = f"{self.prefix}.1"
        self.bridge = f"vtb{self.tag}"
        self.hosts: list[Host] = []
        _ip("link", "del", self.bridge, check=False)  # a killed run's
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def host(self, name: str) -> Host:
        n = len(self.hosts) + 2
        host = Host(name, f"vaulttest-{name}-{self.tag}", f"{self.prefix}.{n}", f"vt{self.tag}h{n}")
        _ip("netns", "del", host.netns, check=False)
        _ip("netns", "add", host.netns)
        self.hosts.append(host)
        _ip("link", "add", host.port, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        _ip("link", "set", host.port, "master", self.bridge, "up")
        _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.netns, "link", "set", "eth0", "up")
        _ip("-n", host.netns, "link", "set", "lo", "up")
        return host

    def close(self) -> None:
        for host in self.hosts:
            _ip("netns", "del", host.netns, check=False)  # takes its veth pair with it
            _ip("link", "del", host.port, check=False)
        _ip("link", "del", self.bridge, check=False)
        self.hosts = []

    def __enter__(self) -> Lan:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
