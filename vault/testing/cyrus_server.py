"""A real Cyrus IMAP 3.6 (Debian packages) on loopback ports, for tests and benchmarks.

One instance is one ``cyrmaster`` with its own ``imapd.conf``/``cyrus.conf``, spool, sasldb and
sockets under ``base``. It is started as root (cyrmaster drops to user ``cyrus``) with IMAP and
LMTP on free loopback ports, users from ``users`` (plus the admin ``cyrus``) and their INBOXes.

Event notification modes (``mode``), see ``tests/data/README.md`` and the captures beside it for the wire formats.
The notification lines of imapd.conf and cyrus.conf come from vault/ingest/dealer/cyrus_config.py,
the engine of ``vaultctl cyrus-config`` (``notify_config`` is the home config that gives them):

- ``external``: a notifyd service execs ``notify_target`` once per event, serially, as user
  ``cyrus``, argv ``-c EVENT -p '' -u '' -m '' -f``, the JSON plus a newline on stdin. Without
  a target, a /bin/sh hook appends every event to ``hook_events_path`` (and its argv to
  ``hook_argv_path``) so tests can read them with :meth:`CyrusServer.hook_events`.
- ``socket``: no notifyd; imapd/lmtpd send each event as one datagram to ``notify_target``,
  a unix datagram socket bound by our daemon (user ``cyrus`` must be able to write to it).
- ``stream``: ``notifysocket: dlist:<notify_target>``; one unix stream connection per event
  carrying a dlist ``NOTIFY`` frame, answered with ``OK NIL\\r\\n``.
- ``none``: no events at all (baseline for benchmarks).

For ``socket`` and ``stream`` without a target, ``notify_target`` defaults to ``dealer.sock``
in the server's socket directory (``socket_dir``, short enough for a unix socket path).
"""

from __future__ import annotations

import grp
import imaplib
import json
import os
import pwd
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
from pathlib import Path

from vault.config import Config
from vault.ingest.dealer.cyrus_config import REQUIRED_IMAPD, CyrusLines, cyrus_lines
from vault.testing import syslogd
from vault.testing.apt import AptError, apt_install
from vault.testing.net import (
    free_port,
    holds_socket,
    kill_leftovers,
    live_pids,
    pid_alive,
    port_free,
    read_pidfile,
    tcp_listener_inode,
    wait_until,
)

MODES = ("external", "socket", "stream", "none")
PACKAGES = ("cyrus-imapd", "cyrus-admin", "cyrus-clients", "sasl2-bin", "rsyslog")
CYRMASTER = Path("/usr/sbin/cyrmaster")
CYRUS_BIN = Path("/usr/lib/cyrus/bin")
SASLPASSWD2 = Path("/usr/sbin/saslpasswd2")
CYRUS_USER, CYRUS_GROUP = "cyrus", "mail"
ADMIN = "cyrus"
# sun_path holds 108 bytes; leave room for the longest socket name used below.
MAX_SOCKET_DIR = 90
# Servers live here rather than under pytest's tmp dirs: pytest strips the o+x bit user cyrus
# needs from /tmp/pytest-of-<user> whenever another session starts, which may be mid-test.
SERVERS_ROOT = Path("/tmp/vault-test-cyrus")


DEFAULT_HOOK = """\
#!/bin/sh
# Run by notifyd as user cyrus, once per event: argv -c EVENT -p '' -u '' -m '' -f, JSON on stdin.
printf '%s\\037' "$@" >> {argv}
echo >> {argv}
cat >> {events}
"""


# the name test clients give in LHLO (never a DNS lookup)
LHLO_NAME = "client.vault.test"


class CyrusError(RuntimeError):
    """Cyrus could not be installed, started or driven; the message names the cause."""


class _PortTaken(Exception):
    pass


def new_base_dir(label: str = "cyrus") -> Path:
    """A fresh, empty directory for one server under SERVERS_ROOT (short paths, traversable by
    user cyrus). The caller removes it when done (``CyrusServer.cleanup(remove=True)``)."""
    SERVERS_ROOT.mkdir(mode=0o755, exist_ok=True)
    SERVERS_ROOT.chmod(0o755)
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=SERVERS_ROOT))


class CyrusServer:
    def __init__(
        self,
        base: Path,
        *,
        mode: str = "external",
        notify_target: str | os.PathLike | None = None,
        users=("alice", "bob"),
        servername: str = "vault.test",
        cpus: set[int] | None = None,
    ):
        """``cpus``: pin cyrmaster (and so every process it forks) to these CPUs."""
        if mode not in MODES:
            raise ValueError(f"unknown Cyrus notifier mode {mode!r} (one of {', '.join(MODES)})")
        self.base = Path(base).absolute()
        self.mode = mode
        self.users = tuple(users)
        self.servername = servername
        self.admin = ADMIN
        self.admin_password = self.password(ADMIN)
        self.config_path = self.base / "imapd.conf"
        self.cyrus_conf_path = self.base / "cyrus.conf"
        self.pidfile = self.base / "run" / "master.pid"
        self.hook_events_path = self.base / "hook" / "events.jsonl"
        self.hook_argv_path = self.base / "hook" / "argv.log"
        # Unique per instance so log_lines() can pick this server's lines out of the shared log.
        self.syslog_prefix = f"cy{secrets.token_hex(4)}"
        self.socket_dir = self._choose_socket_dir()
        self.socket_dir.mkdir(parents=True, exist_ok=True)  # so a listener can bind before start()
        self.notify_target = self._default_target(notify_target)
        self.imap_port = 0
        self.lmtp_port = 0
        self.cpus = set(cpus) if cpus else None

    # ---------------------------------------------------------------- set-up
    @staticmethod
    def ensure_installed() -> None:
        """apt-get install the Cyrus packages (and rsyslog) when cyrmaster (or any syslog) is
        missing."""
        have_cyrus = CYRMASTER.exists() and SASLPASSWD2.exists() and (CYRUS_BIN / "mbpath").exists()
        have_syslog = (
            syslogd.DEV_LOG.exists() or shutil.which("rsyslogd") or Path("/usr/sbin/rsyslogd").exists()
        )
        if have_cyrus and have_syslog:
            return
        try:
            apt_install(*PACKAGES)
        except AptError as e:
            raise CyrusError(f"cannot install Cyrus: {e}") from None
        if not CYRMASTER.exists():
            raise CyrusError(f"installed {' '.join(PACKAGES)}, but {CYRMASTER} is missing")

    def _choose_socket_dir(self) -> Path:
        inside = self.base / "sock"
        if len(str(inside)) <= MAX_SOCKET_DIR:
            self._own_socket_dir = False
            return inside
        self._own_socket_dir = True
        return Path(tempfile.mkdtemp(prefix="cyrus-sock-"))

    def _default_target(self, target) -> Path | None:
        if target is not None:
            return Path(target)
        if self.mode == "external":
            return self.base / "hook" / "notify-hook.sh"
        if self.mode in ("socket", "stream"):
            return self.socket_dir / "dealer.sock"
        return None

    @property
    def _initialised(self) -> bool:
        return (self.base / "sasldb2").exists()

    def notify_config(self) -> Config | None:
        """The dealer settings that lead to this server's notification lines: a home config
        whose ``vaultctl cyrus-config`` prints exactly what :meth:`imapd_conf_text` and
        :meth:`cyrus_conf_text` hold (None in mode ``none``)."""
        if self.mode == "none":
            return None
        config = Config.defaults(self.base)
        dealer = config["dealer"]
        dealer["mode"] = self.mode
        dealer["notifyd_socket"] = str(self.socket_dir / "notify")
        target = str(Path(self.notify_target).absolute()) if self.notify_target else ""
        dealer["hook_path" if self.mode == "external" else "listen_path"] = target
        config["collector"]["imapd_conf"] = str(self.config_path)
        return config

    def _notify_lines(self) -> CyrusLines | None:
        config = self.notify_config()
        return None if config is None else cyrus_lines(config)

    def imapd_conf_text(self) -> str:
        """The imapd.conf this server runs with."""
        b = self.base
        lines = [
            f"servername: {self.servername}",
            f"configdirectory: {b / 'lib'}",
            "defaultpartition: default",
            f"partition-default: {b / 'spool'}",
            f"proc_path: {b / 'run' / 'proc'}",
            f"mboxname_lockpath: {b / 'run' / 'lock'}",
            f"lmtpsocket: {self.lmtp_socket}",
            f"idlesocket: {self.socket_dir / 'idle'}",
            f"admins: {ADMIN}",
            "altnamespace: no",
            "hashimapspool: true",
            "allowplaintext: yes",
            "sasl_pwcheck_method: auxprop",
            "sasl_auxprop_plugin: sasldb",
            f"sasl_sasldb_path: {b / 'sasldb2'}",
            "sasl_mech_list: PLAIN LOGIN",
            "lmtp_downcase_rcpt: yes",
            f"syslog_prefix: {self.syslog_prefix}",
        ]
        notify = self._notify_lines()
        # what `vaultctl cyrus-config` prints for notify_config() (unixhierarchysep among them)
        lines += REQUIRED_IMAPD if notify is None else notify.imapd
        return "\n".join(lines) + "\n"

    def cyrus_conf_text(self) -> str:
        """The cyrus.conf this server runs with."""
        c = f"-C {self.config_path}"  # every cmd needs its own -C
        lines = self._notify_lines()
        notify = "".join(f"  {service}\n" for service in lines.services) if lines else ""
        return (
            "START {\n"
            f'  recover   cmd="ctl_cyrusdb {c} -r"\n'
            "}\nSERVICES {\n"
            f'  imap      cmd="imapd {c}" listen="127.0.0.1:{self.imap_port}" prefork=0\n'
            f'  lmtp      cmd="lmtpd {c} -a" listen="127.0.0.1:{self.lmtp_port}" prefork=0\n'
            f'  lmtpunix  cmd="lmtpd {c}" listen="{self.lmtp_socket}" prefork=0\n'
            f"{notify}"
            "}\nEVENTS {\n"
            f'  checkpoint cmd="ctl_cyrusdb {c} -c" period=30\n'
            "}\nDAEMON {\n"
            f'  idled     cmd="idled {c}"\n'
            "}\n"
        )

    @property
    def lmtp_socket(self) -> Path:
        """LMTP on a unix socket (not pre-authenticated: what a local Postfix would use)."""
        return self.socket_dir / "lmtp"

    def _choose_ports(self):
        # Keep the ports of an earlier start when still free, so clients keep working on restart.
        if not (self.imap_port and port_free(self.imap_port)):
            self.imap_port = free_port()
        while not self.lmtp_port or self.lmtp_port == self.imap_port or not port_free(self.lmtp_port):
            self.lmtp_port = free_port()

    def _prepare(self):
        for d in (
            "lib/db",
            "lib/socket",
            "lib/log",
            "lib/msg",
            "lib/user",
            "lib/quota",
            "spool",
            "run/proc",
            "run/lock",
            "hook",
        ):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        self.config_path.write_text(self.imapd_conf_text())
        self.cyrus_conf_path.write_text(self.cyrus_conf_text())
        if self.mode == "external" and self.notify_target == self.base / "hook" / "notify-hook.sh":
            self.notify_target.write_text(
                DEFAULT_HOOK.format(argv=self.hook_argv_path, events=self.hook_events_path)
            )
            self.notify_target.chmod(0o755)
        if not self._initialised:
            self._make_sasldb()
            # Only on the first start: later the spool may be large, and Cyrus owns it already.
            uid, gid = pwd.getpwnam(CYRUS_USER).pw_uid, grp.getgrnam(CYRUS_GROUP).gr_gid
            for tree in (self.base, self.socket_dir):
                _chown_tree(tree, uid, gid)
        for tree in (self.base, self.socket_dir):
            _make_traversable(tree)

    def _make_sasldb(self):
        sasldb = self.base / "sasldb2.new"
        sasldb.unlink(missing_ok=True)
        for user in (ADMIN, *self.users):
            self._set_password(sasldb, user)
        sasldb.chmod(0o640)
        sasldb.rename(self.base / "sasldb2")

    def _set_password(self, sasldb: Path, login: str, as_cyrus: bool = False):
        done = subprocess.run(
            [str(SASLPASSWD2), "-p", "-c", "-u", self.servername, "-f", str(sasldb), login],
            input=self.password(login),
            capture_output=True,
            text=True,
            # as_cyrus: drop to Cyrus's user and group (None: run as we are)
            user=CYRUS_USER if as_cyrus else None,
            group=CYRUS_GROUP if as_cyrus else None,
            extra_groups=[] if as_cyrus else None,
        )
        if done.returncode != 0:
            raise CyrusError(f"saslpasswd2 failed for {login}: {done.stderr.strip()}")

    def add_user(self, user: str) -> None:
        """Add a login (password ``password(user)``) and its INBOX to a running server."""
        # as cyrus, so the database keeps its owner (Cyrus must read it)
        self._set_password(self.base / "sasldb2", user, as_cyrus=True)
        self.users += (user,)
        self.create_mailbox(f"user/{user}")

    # ---------------------------------------------------------------- life cycle
    @property
    def running(self) -> bool:
        pid = read_pidfile(self.pidfile)
        return pid is not None and pid_alive(pid)

    def start(self) -> None:
        """Start cyrmaster and wait until IMAP and LMTP greet; create the users' INBOXes on the
        first start. Raises CyrusError naming the cause, with the tail of the Cyrus log."""
        if self.running:
            return
        if os.geteuid() != 0:
            raise CyrusError("Cyrus must be started as root (cyrmaster drops to user cyrus)")
        self.ensure_installed()
        try:
            syslogd.ensure_syslog()
        except syslogd.SyslogError as e:
            raise CyrusError(f"no syslog for Cyrus's log: {e}") from e
        first = not self._initialised
        for _attempt in range(3):
            try:
                self._launch()
                break
            except _PortTaken:
                # another process bound a port between our pick and cyrmaster's bind: pick again
                self.stop()
                self.imap_port = self.lmtp_port = 0
        else:
            self._fail("the chosen loopback ports were taken by others three times")
        if first:
            try:
                for user in self.users:
                    self.create_mailbox(f"user/{user}")
            except (OSError, imaplib.IMAP4.error, CyrusError) as e:
                self._fail(f"cannot create the users' mailboxes: {e}")

    def _launch(self):
        self._prepare()
        self.pidfile.unlink(missing_ok=True)
        done = subprocess.run(
            [
                str(CYRMASTER),
                "-d",
                "-C",
                str(self.config_path),
                "-M",
                str(self.cyrus_conf_path),
                "-p",
                str(self.pidfile),
            ],
            capture_output=True,
            text=True,
            # the affinity is inherited across cyrmaster's daemonising fork and every service it forks
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if (cpus := self.cpus) else None,
        )
        if done.returncode != 0:
            self._fail(f"cyrmaster exited {done.returncode}: {(done.stdout + done.stderr).strip()}")
        if not wait_until(self._greets, 20, step=0.02):
            self._fail(f"IMAP {self.imap_port} / LMTP {self.lmtp_port} did not answer within 20 s")

    def _greets(self) -> bool:
        master = read_pidfile(self.pidfile)
        if master is None or not pid_alive(master):
            if master is not None:
                self._fail("cyrmaster exited while starting")
            return False  # not written yet
        for port in (self.imap_port, self.lmtp_port):
            inode = tcp_listener_inode(port)
            if inode is None:
                return False
            if not holds_socket(master, inode):
                raise _PortTaken(port)
        return _greeting(self.imap_port).startswith(b"* OK") and _greeting(self.lmtp_port).startswith(b"220")

    def _fail(self, why: str):
        tail = "\n".join(self.log_lines()[-30:]) or "(no Cyrus log lines)"
        self.stop()
        raise CyrusError(f"Cyrus in {self.base} ({self.mode} mode): {why}\n--- Cyrus log tail ---\n{tail}")

    def stop(self) -> None:
        """Stop cyrmaster and every process still running with this instance's imapd.conf."""
        pid = read_pidfile(self.pidfile)
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            if not wait_until(lambda: not pid_alive(pid), 10, step=0.02):
                os.kill(pid, signal.SIGKILL)
        kill_leftovers(self._our_processes, step=0.02)
        self.pidfile.unlink(missing_ok=True)

    def cleanup(self, remove: bool = False) -> None:
        """Stop; remove the socket directory kept outside ``base`` (long base paths) and, with
        ``remove``, ``base`` itself."""
        self.stop()
        if self._own_socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)

    def _our_processes(self) -> list[int]:
        needle = str(self.config_path).encode()
        return live_pids(lambda proc: needle in (proc / "cmdline").read_bytes().split(b"\0"))

    def __enter__(self) -> CyrusServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # ---------------------------------------------------------------- clients
    def password(self, user: str) -> str:
        return f"secret-{user}"

    def imap(self, user: str) -> imaplib.IMAP4:
        """An IMAP client logged in as ``user`` (the admin is ``self.admin``)."""
        client = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=30)
        client.login(user, self.password(user))
        return client

    def create_mailbox(self, name: str) -> None:
        """CREATE ``name`` (IMAP name with ``/``, e.g. ``user/alice/Archive``) as the admin."""
        client = self.imap(ADMIN)
        try:
            typ, data = client.create(_quote(name))
            if typ != "OK":
                raise CyrusError(f"CREATE {name} failed: {_text(data)}")
        finally:
            client.logout()

    def lmtp(self, timeout: float = 60) -> smtplib.LMTP:
        """An LMTP connection (TCP, pre-authenticated) that has said LHLO. Its name is explicit:
        smtplib's default is socket.getfqdn(), a DNS lookup per connection wherever the
        hostname is not in /etc/hosts."""
        lmtp = smtplib.LMTP("127.0.0.1", self.lmtp_port, local_hostname=LHLO_NAME, timeout=timeout)
        lmtp.ehlo()  # LHLO
        return lmtp

    def lmtp_deliver(self, rcpt: str, message: bytes, sender: str = "sender@example.org") -> str:
        """Deliver one message over LMTP (TCP, pre-authenticated); return the final reply text,
        which carries ``SESSIONID=<...>``. Cyrus silently drops a second delivery of the same
        Message-ID to a mailbox (still 250, but no new message and no event)."""
        with self.lmtp() as lmtp:
            for step, (code, reply) in (("MAIL FROM", lmtp.mail(sender)), ("RCPT TO", lmtp.rcpt(rcpt))):
                if code != 250:
                    raise CyrusError(f"LMTP {step} {rcpt}: {code} {_text([reply])}")
            code, reply = lmtp.data(message)
            if code != 250:
                raise CyrusError(f"LMTP DATA for {rcpt}: {code} {_text([reply])}")
            return _text([reply])

    # ---------------------------------------------------------------- inspection
    def run_tool(self, tool: str, *args: str) -> str:
        """Run a Cyrus command-line tool from /usr/lib/cyrus/bin as user cyrus; return stdout."""
        argv = [str(CYRUS_BIN / tool), "-C", str(self.config_path), *args]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            user=CYRUS_USER,
            group=CYRUS_GROUP,
            extra_groups=[],
            cwd=self.base,
        )
        if done.returncode != 0:
            raise CyrusError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def mailbox_path(self, name: str) -> Path:
        """The spool directory of mailbox ``name`` (``user/alice`` or ``user.alice``)."""
        return Path(self.run_tool("mbpath", name).strip())

    def mailbox_list(self) -> list[dict]:
        """``ctl_mboxlist -d``: one dict per mailbox, ``name`` (internal, dotted) plus Cyrus's
        fields (``uniqueid`` is the events' ``mailboxID``)."""
        dump = json.loads(self.run_tool("ctl_mboxlist", "-d") or "{}")
        return [{"name": name, **fields} for name, fields in dump.items()]

    def log_lines(self) -> list[str]:
        """This server's syslog lines (all its services tag with ``syslog_prefix``)."""
        return syslogd.lines_tagged(f"{self.syslog_prefix}/")

    def hook_events(self) -> list[dict]:
        """Events the default external hook has received so far, oldest first."""
        return [json.loads(line) for line in _complete_lines(self.hook_events_path)]

    def hook_argvs(self) -> list[list[str]]:
        """The argv (without program name) of each run of the default external hook."""
        return [line.split("\x1f")[:-1] for line in _complete_lines(self.hook_argv_path)]

    def wait_hook_events(self, predicate, seconds: float = 10) -> list[dict]:
        """Wait until ``predicate(events)`` holds for the hook's events (notifyd runs the hook
        after the client got its reply); return the events, or raise CyrusError on timeout."""

        def ready():
            events = self.hook_events()
            return events if predicate(events) else None

        events = wait_until(ready, seconds, step=0.02)
        if events is None:
            got = [e.get("event") for e in self.hook_events()]
            raise CyrusError(f"hook events did not arrive within {seconds} s; got {got}")
        return events


def _complete_lines(path: Path) -> list[str]:
    """Lines of a file another process appends to, without a last line still being written."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [line for line in text.split("\n")[:-1] if line.strip()]


def _greeting(port: int) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            return s.recv(200)
    except OSError:
        return b""


def _chown_tree(root: Path, uid: int, gid: int):
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def _make_traversable(path: Path):
    """pytest's tmp dirs are 0700 root: let user cyrus pass through every parent directory."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod((mode & 0o7777) | 0o001)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(data) -> str:
    return " ".join(d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in data if d)
