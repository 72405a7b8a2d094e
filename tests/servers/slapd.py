"""A real OpenLDAP slapd for tests (marker ``slapd``); see conftest.py.

One private slapd per test session: ``slapd.conf`` with an mdb database under a temporary
directory, listening on a free loopback port, seeded with the entries below. Installs the
Debian packages ``slapd ldap-utils`` when slapd is missing; fails (never skips) when it
cannot install or start it.

Seed data (suffix ``dc=example,dc=org``, admin ``cn=admin,dc=example,dc=org`` / ``secret``):

- ``uid=alice,ou=people``: cn Alice Example, displayName "Alice Example", mail
  alice@feas.local and alice.example@feas.local; employeeNumber E-1001
- ``uid=bob,ou=people``: cn Bob Builder, mail bob@feas.local
- ``uid=carol,ou=people``: cn Carol Cash, mail carol@feas.local, no displayName
- groups (groupOfNames, ``ou=groups``): legal = alice, bob; finance = carol
- posixGroup ``cn=staff,ou=groups`` with memberUid alice, carol
- the memberof overlay gives users ``memberOf`` for their groupOfNames groups

Tests that change entries should add their own users (``slapd.add_user``) rather than edit
the seed ones: the server lives for the whole session. A test may ``stop()`` the server;
the ``slapd`` fixture starts it again before the next test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from ldap3 import Connection, Server

from vault.testing.apt import AptError, apt_install
from vault.testing.net import free_port

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def _install():
    try:
        apt_install("slapd", "ldap-utils", preseed="slapd slapd/no_configuration boolean true\n")
    except AptError as e:
        pytest.fail(str(e))


def _wait(predicate, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"slapd: {what} after {seconds} s")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class SlapdServer:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.suffix = SUFFIX
        self.admin_dn = ADMIN_DN
        self.admin_password = ADMIN_PASSWORD
        self.people = PEOPLE
        self.groups = GROUPS
        self.pidfile = root / "run" / "slapd.pid"
        self.log = root / "slapd.log"
        self._write_config()

    def _write_config(self):
        (self.root / "db").mkdir(parents=True, exist_ok=True)
        (self.root / "run").mkdir(parents=True, exist_ok=True)
        lines = [f"include /etc/ldap/schema/{s}.schema" for s in SCHEMAS]
        lines += [
            f"pidfile {self.pidfile}",
            f"argsfile {self.root / 'run' / 'slapd.args'}",
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            "moduleload memberof",
            "database mdb",
            "maxsize 104857600",
            f'suffix "{SUFFIX}"',
            f'rootdn "{ADMIN_DN}"',
            f"rootpw {ADMIN_PASSWORD}",
            f"directory {self.root / 'db'}",
            "index objectClass,uid,mail,entryUUID,member,memberUid eq",
            # users get memberOf for their groupOfNames groups (Active Directory style)
            "overlay memberof",
        ]
        (self.root / "slapd.conf").write_text("\n".join(lines) + "\n")

    @property
    def running(self) -> bool:
        return self.pidfile.exists() and _port_open(self.port)

    def start(self):
        if self.running:
            return
        with open(self.log, "ab") as log:
            done = subprocess.run(
                [SLAPD, "-f", str(self.root / "slapd.conf"), "-h", f"{self.url}/"],
                stdout=log,
                stderr=log,
            )
        if done.returncode != 0:
            pytest.fail(
                f"slapd did not start (exit {done.returncode}): "
                f"{self.log.read_text(errors='replace')[-2000:]}"
            )
        _wait(lambda: _port_open(self.port), f"port {self.port} not open")

    def stop(self):
        if not self.pidfile.exists():
            return
        pid = int(self.pidfile.read_text().split()[0])
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            self.pidfile.unlink(missing_ok=True)
            return

        def gone():
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True

        _wait(gone, f"pid {pid} still alive")
        self.pidfile.unlink(missing_ok=True)

    def admin(self) -> Connection:
        """A connection bound as the directory manager (independent of vault's code)."""
        return Connection(Server(self.url), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True, raise_exceptions=True)

    def add_user(self, uid: str, cn: str, mails=(), **extra) -> str:
        dn = f"uid={uid},{PEOPLE}"
        attrs = {"uid": uid, "cn": cn, "sn": cn.split()[-1], **extra}
        if mails:
            attrs["mail"] = list(mails)
        with self.admin() as conn:
            conn.add(dn, ["inetOrgPerson"], attrs)
        return dn

    def add_to_group(self, group: str, member_dn: str):
        with self.admin() as conn:
            conn.modify(f"cn={group},{GROUPS}", {"member": [("MODIFY_ADD", [member_dn])]})

    def entry_uuid(self, dn: str) -> str:
        with self.admin() as conn:
            conn.search(dn, "(objectClass=*)", "BASE", attributes=["entryUUID"])
            return str(conn.entries[0].entryUUID.value)

    def seed(self):
        with self.admin() as conn:
            conn.add(SUFFIX, ["dcObject", "organization"], {"o": "Example", "dc": "example"})
            for ou in ("people", "groups"):
                conn.add(f"ou={ou},{SUFFIX}", ["organizationalUnit"], {"ou": ou})
        self.add_user(
            "alice",
            "Alice Example",
            ["alice@feas.local", "alice.example@feas.local"],
            displayName="Alice Example",
            employeeNumber="E-1001",
        )
        self.add_user("bob", "Bob Builder", ["bob@feas.local"])
        self.add_user("carol", "Carol Cash", ["carol@feas.local"])
        with self.admin() as conn:
            for group, members in (("legal", ["alice", "bob"]), ("finance", ["carol"])):
                conn.add(
                    f"cn={group},{GROUPS}",
                    ["groupOfNames"],
                    {"cn": group, "member": [f"uid={m},{PEOPLE}" for m in members]},
                )
            conn.add(
                f"cn=staff,{GROUPS}",
                ["posixGroup"],
                {"cn": "staff", "gidNumber": 5000, "memberUid": ["alice", "carol"]},
            )


@pytest.fixture(scope="session")
def slapd_server(tmp_path_factory):
    if not Path(SLAPD).exists() or shutil.which("ldapadd") is None:
        _install()
    server = SlapdServer(tmp_path_factory.mktemp("slapd"))
    server.start()
    try:
        server.seed()
        yield server
    finally:
        server.stop()


@pytest.fixture
def slapd(slapd_server):
    """The session's slapd, running (started again if an earlier test stopped it)."""
    slapd_server.start()
    return slapd_server
