"""Small process and socket helpers shared by the test servers."""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path

_handed_out: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of local ports for outgoing connections (and for binding port 0)."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the caller binds it soon after), never
    one this process handed out before. It lies below the kernel's ephemeral range: a port the
    kernel picked for us (bind to 0) is one it may give the next outgoing connection, and a
    server then started on it fails with EADDRINUSE (seen in CI: the vault service's API)."""
    low = ephemeral_range()[0]
    floor = 10000 if low > 12000 else 1024
    for _ in range(1000):
        port = random.randrange(floor, low)
        if port not in _handed_out and port_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free loopback port in {floor}-{low - 1}")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_until(predicate: Callable[[], object], seconds: float, step: float = 0.01):
    """Poll ``predicate`` until it returns something truthy; return that, or None on timeout."""
    deadline = time.monotonic() + seconds
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(step)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs. A zombie counts as gone: daemons reparented to an init that
    does not reap them would otherwise look alive forever."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state != b"Z"


def read_pidfile(path: os.PathLike) -> int | None:
    try:
        return int(open(path).read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def tcp_listener_inode(port: int, host_hex: str = "0100007F") -> int | None:
    """Inode of the socket listening on 127.0.0.1:``port`` (from /proc/net/tcp), if any."""
    wanted = f"{host_hex}:{port:04X}"
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
                return int(fields[9])
    return None


def holds_socket(pid: int, inode: int) -> bool:
    """True when process ``pid`` has socket ``inode`` open."""
    target = f"socket:[{inode}]"
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def live_pids(match) -> list[int]:
    """Live processes (not this one) for which ``match(proc_dir)`` is true; a process that
    ends while being looked at, or whose files cannot be read, is skipped."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            matched = match(entry)
        except OSError:
            continue
        if matched and pid_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def kill_leftovers(find: Callable[[], list[int]], seconds: float = 5, step: float = 0.02) -> bool:
    """SIGKILL every process ``find()`` names until it names none (or ``seconds`` pass)."""
    import signal

    for pid in find():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return wait_until(lambda: not find(), seconds, step=step)
