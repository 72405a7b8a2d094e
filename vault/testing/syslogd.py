"""A machine-wide syslog for test servers that only log through syslog(3) (Cyrus).

These machines run no syslog daemon, so ``/dev/log`` is missing and Cyrus's log is lost. The
first caller of :func:`ensure_syslog` starts one rsyslogd (imuxsock on ``/dev/log``, everything
to ``SHARED_DIR/messages.log``, no rate limit); later callers, also in other processes (several
pytest sessions may run at once), reuse it. ``/dev/log`` is one per machine, hence one daemon and
one file: readers filter lines by their own syslog tag. Each calling process holds a lease
(``SHARED_DIR/leases/<pid>``); the last one to exit stops the daemon.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import signal
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path

from vault.testing.net import pid_alive, read_pidfile, wait_until

DEV_LOG = Path("/dev/log")
SHARED_DIR = Path("/tmp/vault-test-syslog")
PIDFILE = SHARED_DIR / "rsyslogd.pid"
LEASES = SHARED_DIR / "leases"
LOGFILE = SHARED_DIR / "messages.log"
# Where a real syslog daemon (not ours) usually writes mail and daemon facility lines.
SYSTEM_LOGS = (Path("/var/log/mail.log"), Path("/var/log/syslog"), Path("/var/log/messages"))

CONFIG = f"""\
global(workDirectory="{SHARED_DIR}")
module(load="imuxsock" SysSock.Name="{DEV_LOG}" SysSock.RateLimit.Interval="0")
*.* action(type="omfile" file="{LOGFILE}")
"""


class SyslogError(RuntimeError):
    pass


def _dev_log_answers() -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(str(DEV_LOG))
        except OSError:
            return False
        return True


def _ours_running() -> bool:
    pid = read_pidfile(PIDFILE)
    return pid is not None and pid_alive(pid)


@contextmanager
def _locked():
    SHARED_DIR.mkdir(mode=0o755, exist_ok=True)
    with open(SHARED_DIR / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _live_leases() -> list[int]:
    pids = []
    for lease in LEASES.glob("*"):
        if lease.name.isdigit() and pid_alive(int(lease.name)):
            pids.append(int(lease.name))
        else:
            lease.unlink(missing_ok=True)
    return pids


def _release():
    """At exit: drop this process's lease; the last process out stops our rsyslogd."""
    with _locked():
        (LEASES / str(os.getpid())).unlink(missing_ok=True)
        pid = read_pidfile(PIDFILE)
        if _live_leases() or pid is None or not pid_alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not pid_alive(pid), 10)


def log_files() -> list[Path]:
    """The files syslog lines end up in: ours when our daemon serves /dev/log, else the usual
    system files that exist."""
    if _ours_running():
        return [LOGFILE]
    return [p for p in SYSTEM_LOGS if p.exists()]


def ensure_syslog() -> None:
    """Make sure something answers on /dev/log, starting our rsyslogd if nothing does."""
    with _locked():
        _take_lease()
        if _dev_log_answers():
            return
        if DEV_LOG.is_socket():
            DEV_LOG.unlink()  # left behind by a daemon that died; nobody reads it
        rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        if not Path(rsyslogd).exists():
            raise SyslogError("rsyslogd is not installed (Debian package rsyslog)")
        if LOGFILE.exists():
            LOGFILE.replace(LOGFILE.with_suffix(".log.1"))  # nobody reads it now: keep it bounded
        (SHARED_DIR / "rsyslog.conf").write_text(CONFIG)
        done = subprocess.run(
            [rsyslogd, "-f", str(SHARED_DIR / "rsyslog.conf"), "-i", str(PIDFILE)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not wait_until(_dev_log_answers, 10):
            raise SyslogError(
                f"rsyslogd did not start (exit {done.returncode}): "
                f"{(done.stdout + done.stderr).strip()[-2000:]}"
            )
        wait_until(lambda: read_pidfile(PIDFILE), 5)


def _take_lease():
    lease = LEASES / str(os.getpid())
    if not lease.exists():
        LEASES.mkdir(exist_ok=True)
        lease.touch()
        atexit.register(_release)


def lines_tagged(tag_prefix: str) -> list[str]:
    """Lines whose syslog tag starts with ``tag_prefix`` (e.g. a Cyrus ``syslog_prefix``)."""
    needle = f" {tag_prefix}"
    out: list[str] = []
    for path in log_files():
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        out.extend(line for line in text.splitlines() if needle in line)
    return out
