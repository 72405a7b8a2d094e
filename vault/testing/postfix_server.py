"""A private Postfix 3.7 (Debian package) on a loopback port, for tests and debugging.

One instance is one ``master`` with its own ``config_directory`` (``main.cf``, ``master.cf``),
``queue_directory`` and ``data_directory`` under ``base``; it logs to ``base/maillog`` through
``postlogd`` (``maillog_file``), not to syslog. The only listener is smtpd on
``127.0.0.1:<smtp_port>`` (never port 25); a system Postfix in ``/etc/postfix`` is neither read
nor touched. Started as root (``postfix -c DIR start``; the daemons drop to user ``postfix``).

Mail routing, chosen so that nothing leaves the machine and nothing needs DNS:

- ``domain`` (default ``vault.test``, Cyrus's servername in :class:`CyrusServer`) is a virtual
  mailbox domain delivered by ``virtual_transport = lmtp:inet:127.0.0.1:<lmtp_port>``; every
  recipient is accepted at SMTP time (no ``virtual_mailbox_maps``), so the LMTP server decides
  (Cyrus answers ``550 5.1.1`` for unknown users and Postfix bounces to the sender).
- every other domain goes to ``default_transport = error:...``: bounce notices to outside
  senders are "bounced" at once instead of waiting on DNS.
- no local delivery (``mydestination`` empty).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
from pathlib import Path

from vault.testing.apt import AptError, apt_install
from vault.testing.net import (
    free_port,
    kill_leftovers,
    live_pids,
    pid_alive,
    port_free,
    read_pidfile,
    wait_until,
)

POSTFIX = Path("/usr/sbin/postfix")
POSTCONF = Path("/usr/sbin/postconf")
DAEMON_DIR = Path("/usr/lib/postfix/sbin")
MAIL_OWNER = "postfix"
PRESEED = "postfix postfix/main_mailer_type select No configuration\n"
# Servers live here (traversable by user postfix), not under pytest's 0700 tmp dirs.
SERVERS_ROOT = Path("/tmp/vault-test-postfix")

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
{smtp_listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixError(RuntimeError):
    """Postfix could not be installed, started or driven; the message names the cause."""


def new_base_dir(label: str = "postfix") -> Path:
    """A fresh directory for one instance under SERVERS_ROOT; ``cleanup(remove=True)`` removes it."""
    SERVERS_ROOT.mkdir(mode=0o755, exist_ok=True)
    SERVERS_ROOT.chmod(0o755)
    base = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=SERVERS_ROOT))
    base.chmod(0o755)  # postfix's daemons must reach the queue and data directories inside
    return base


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if os.geteuid() != 0:
        argv = ["sudo", "-n", *argv]
    return subprocess.run(argv, env=env, capture_output=True, text=True, **kw)


class PostfixServer:
    def __init__(
        self,
        base: Path,
        *,
        lmtp_port: int,
        domain: str = "vault.test",
        myhostname: str = "mx.vault.test",
        lmtp_host: str = "127.0.0.1",
    ):
        self.base = Path(base).absolute()
        self.domain = domain
        self.myhostname = myhostname
        self.lmtp_host = lmtp_host
        self.lmtp_port = lmtp_port
        self.config_dir = self.base / "etc"
        self.queue_dir = self.base / "spool"
        self.data_dir = self.base / "data"
        self.maillog = self.base / "maillog"
        self.pidfile = self.queue_dir / "pid" / "master.pid"
        self.smtp_port = 0

    # ---------------------------------------------------------------- set-up
    @staticmethod
    def ensure_installed() -> None:
        """apt-get install Debian's postfix (preseeded "No configuration", so /etc/postfix gets
        no main.cf and no service is configured) when it is missing; apt-get update first only
        when the plain install fails."""
        if POSTFIX.exists() and POSTCONF.exists() and (DAEMON_DIR / "postlogd").exists():
            return
        try:
            apt_install("postfix", preseed=PRESEED)
        except AptError as e:
            raise PostfixError(f"cannot install postfix: {e}") from None
        if not POSTFIX.exists():
            raise PostfixError(f"installed postfix, but {POSTFIX} is missing")

    def _main_cf(self) -> str:
        settings = {
            "compatibility_level": "3.6",
            "config_directory": self.config_dir,
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "mail_owner": MAIL_OWNER,
            "myhostname": self.myhostname,
            "mydomain": self.domain,
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "local_transport": "error:5.1.1 no local delivery in this test instance",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "relayhost": "",
            "virtual_mailbox_domains": self.domain,
            "virtual_mailbox_maps": "",
            "virtual_alias_maps": "",
            "virtual_transport": f"lmtp:inet:{self.lmtp_host}:{self.lmtp_port}",
            "default_transport": "error:5.4.4 outside mail is not delivered by this test instance",
            "relay_transport": "error:5.4.4 outside mail is not delivered by this test instance",
            "disable_dns_lookups": "yes",
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "smtputf8_enable": "no",
            "biff": "no",
            "notify_classes": "",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.base,
            "syslog_name": "postfix",
            "delay_warning_time": "0",
            "queue_run_delay": "5s",
            "minimal_backoff_time": "5s",
            "maximal_backoff_time": "10s",
        }
        return "".join(f"{k} = {v}\n" for k, v in settings.items())

    def _prepare(self) -> None:
        if not (self.smtp_port and port_free(self.smtp_port)):
            self.smtp_port = free_port()
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "main.cf").write_text(self._main_cf())
        (self.config_dir / "master.cf").write_text(
            MASTER_CF.format(smtp_listen=f"127.0.0.1:{self.smtp_port}")
        )
        pw = pwd.getpwnam(MAIL_OWNER)
        self.queue_dir.mkdir(mode=0o755, exist_ok=True)  # root-owned; post-install makes the rest
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)

    # ---------------------------------------------------------------- life cycle
    @property
    def master_pid(self) -> int | None:
        pid = read_pidfile(self.pidfile)
        return pid if pid is not None and pid_alive(pid) else None

    @property
    def running(self) -> bool:
        return self.master_pid is not None

    def postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``postfix -c <config_dir> ARGS`` (start, stop, flush, ...)."""
        done = _run([str(POSTFIX), "-c", str(self.config_dir), *args], timeout=120)
        if check and done.returncode != 0:
            raise PostfixError(
                f"postfix {' '.join(args)} exited {done.returncode}: {(done.stdout + done.stderr).strip()}"
            )
        return done

    def postconf(self, *args: str) -> str:
        done = _run([str(POSTCONF), "-c", str(self.config_dir), *args])
        if done.returncode != 0:
            raise PostfixError(f"postconf {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        """Write the configuration, start the master and wait until smtpd greets. Raises
        PostfixError naming the cause, with the tail of the instance's maillog."""
        if self.running:
            return
        if os.geteuid() != 0:
            raise PostfixError("Postfix must be started as root (its daemons drop to user postfix)")
        self.ensure_installed()
        for attempt in range(3):
            self._prepare()
            logged = len(self.log_lines())
            done = self.postfix("start", check=False)
            if done.returncode == 0:
                break
            taken = f"bind 127.0.0.1 port {self.smtp_port}: Address already in use"
            if attempt < 2 and any(taken in line for line in self.log_lines()[logged:]):
                self.stop()  # another process bound the port between our pick and master's bind
                self.smtp_port = 0
                continue
            self._fail(f"postfix start exited {done.returncode}: {(done.stdout + done.stderr).strip()}")
        if not wait_until(self._greets, 30, step=0.05):
            self._fail(f"smtpd on 127.0.0.1:{self.smtp_port} did not greet within 30 s")

    def _greets(self) -> bool:
        if self.master_pid is None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=2) as s:
                greeting = s.recv(200)
                s.sendall(b"QUIT\r\n")
                return greeting.startswith(b"220")
        except OSError:
            return False

    def _fail(self, why: str):
        tail = "\n".join(self.log_lines()[-30:]) or "(no maillog lines)"
        self.stop()
        raise PostfixError(f"Postfix in {self.base}: {why}\n--- maillog tail ---\n{tail}")

    def stop(self) -> None:
        """``postfix stop``, then kill whatever of this instance still runs."""
        if self.running:
            self.postfix("stop", check=False)
            pid = self.master_pid
            if pid is not None and not wait_until(lambda: not pid_alive(pid), 10, step=0.05):
                os.kill(pid, signal.SIGKILL)
        kill_leftovers(self._our_processes, step=0.05)

    def cleanup(self, remove: bool = False) -> None:
        """Stop; with ``remove``, delete ``base`` (configuration, queue, maillog)."""
        self.stop()
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)

    def _our_processes(self) -> list[int]:
        """Processes of this instance: Postfix daemons chdir to the queue directory."""
        queue = str(self.queue_dir)

        def ours(proc: Path) -> bool:
            cwd = os.readlink(proc / "cwd")
            return cwd == queue or cwd.startswith(f"{queue}/")

        return live_pids(ours)

    def __enter__(self) -> PostfixServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # ---------------------------------------------------------------- clients
    def send(self, sender: str, recipients: list[str] | str, message: bytes) -> dict:
        """One SMTP transaction; returns smtplib's refused-recipients dict (empty: all accepted)."""
        with smtplib.SMTP(
            "127.0.0.1", self.smtp_port, local_hostname="client.vault.test", timeout=60
        ) as smtp:
            return smtp.sendmail(sender, recipients, message)

    def flush(self) -> None:
        """Ask the queue manager to retry deferred mail now (``postqueue -f``)."""
        done = _run(["/usr/sbin/postqueue", "-c", str(self.config_dir), "-f"])
        if done.returncode != 0:
            raise PostfixError(f"postqueue -f: {done.stderr.strip()}")

    # ---------------------------------------------------------------- inspection
    def log_lines(self) -> list[str]:
        """Complete lines of this instance's maillog so far."""
        try:
            text = self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return text.split("\n")[:-1]

    def wait_log(self, predicate, seconds: float = 30) -> list[str]:
        """Wait until ``predicate(lines)`` holds for the maillog; return the lines, or raise
        PostfixError with the tail on timeout."""

        def ready():
            lines = self.log_lines()
            return lines if predicate(lines) else None

        lines = wait_until(ready, seconds, step=0.05)
        if lines is None:
            tail = "\n".join(self.log_lines()[-30:])
            raise PostfixError(
                f"maillog did not show what was awaited within {seconds} s\n--- tail ---\n{tail}"
            )
        return lines
