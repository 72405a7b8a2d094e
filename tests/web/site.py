"""The site the page tests run against: a real ``vaultctl serve`` with ``[web] listen`` on a
free loopback port, logins against the session's real slapd, a real Cyrus to restore into,
and a vault holding corpus mail (SpamAssassin's public corpus: ham in the INBOXes, spam in
a Junk folder and some marked in the INBOX) over the last weeks, plus a few messages made
here (an HTML one with a script and an attachment, a deleted one, a large one).

People (LDAP users with passwords; the Cyrus login of wdora has the same password):
wdora (user), wbob (user, custodian of matter ``case-7``), wrev (reviewer of case-7),
wadm (admin), wcarl (user, whose wrong passwords the throttle test spends).
"""

from __future__ import annotations

import email
import http.client
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlencode

from vault.testing.cli import vaultctl_argv
from vault.testing.serve import Served, edit_config, start_service

PASSWORDS = {u: f"secret-{u}" for u in ("wdora", "wbob", "wrev", "wadm", "wcarl")}
MATTER = "case-7"
LARGE = 20_000  # [web] large_message_bytes of the site
SCRIPT_MARK = "alert('owned')"


def vaultctl(home: Path, *args: str) -> str:
    done = subprocess.run(vaultctl_argv(*args, home=home), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def marked_spam(data: bytes) -> bool:
    """The rule of the dashboard, written out again from its description."""
    msg = email.message_from_bytes(data)
    flag = str(msg.get("X-Spam-Flag", "")).strip().lower()
    return flag == "yes" or str(msg.get("X-Spam-Status", "")).strip().lower().startswith("yes")


def _message(subject: str, sender: str, to: str, body: str, mid: str, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n"
        f"Date: {format_datetime(datetime.now(UTC) - timedelta(days=3))}\r\n{extra}\r\n{body}\r\n"
    ).encode()


def html_with_attachment() -> bytes:
    return (
        "From: Eve <eve@example.org>\r\nTo: wdora@example.org\r\nSubject: Quarterly numbers\r\n"
        "Message-ID: <quarterly@example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<html><head><style>p{{color:red}}</style></head><body><p>Numbers are <b>up</b> 12%.</p>"
        f'<script>{SCRIPT_MARK}</script><img src="https://tracker.example/p.gif"></body></html>\r\n'
        '--b1\r\nContent-Type: text/csv; name="q3.csv"\r\n'
        'Content-Disposition: attachment; filename="q3.csv"\r\n\r\n'
        "quarter,revenue\r\nQ3,1200\r\n--b1--\r\n"
    ).encode()


@dataclass
class Mail:
    """Maildirs per folder, edited between imports as a client edits its folders."""

    root: Path
    home: Path
    counts: dict = field(default_factory=dict)

    def put(self, folder: str, name: str, data: bytes, flags: str = "", when: datetime | None = None) -> Path:
        box = self.root / folder.replace("/", "_")
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        path = box / "cur" / f"{name}:2,{flags}"
        path.write_bytes(data)
        if when is not None:
            os.utime(path, (when.timestamp(), when.timestamp()))
        return path

    def drop(self, folder: str, name: str) -> None:
        for old in (self.root / folder.replace("/", "_") / "cur").glob(f"{name}:2,*"):
            old.unlink()

    def import_(self, *folders: str) -> None:
        for folder in folders:
            vaultctl(self.home, "import", str(self.root / folder.replace("/", "_")), "--mailbox", folder)


@dataclass
class Site:
    home: Path
    port: int
    cyrus: object
    deleted_at: str  # a time when wdora's "Trip plan" was still in her INBOX (deleted since)
    expected: dict  # what the dashboard must show, computed here from the files laid out
    artifacts: Path
    served: Served  # its vaultctl serve (vault/testing/serve.py)

    def client(self) -> Client:
        return Client(self.port)

    def audit(self) -> list[dict]:
        return json.loads(vaultctl(self.home, "audit", "--json"))


class Client:
    """An HTTP client with a cookie jar, following no redirects."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        hdrs = {"Connection": "close", **(headers or {})}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form, doseq=True).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=hdrs)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        for value in response.headers.get_all("Set-Cookie") or []:
            self.set_cookie_headers.append(value)
            name, _, rest = value.partition("=")
            val = rest.split(";", 1)[0]
            if "Max-Age=0" in value or "expires=Thu, 01 Jan 1970" in value or not val or val == '""':
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = val
        return response.status, response.headers, data

    def get(self, path: str, html: bool = True):
        return self.request("GET", path, headers={"Accept": "text/html"} if html else {"Accept": "*/*"})

    def post(self, path: str, form: dict):
        return self.request("POST", path, form=form)

    def login(self, user: str, password: str | None = None) -> int:
        status, _, body = self.get("/login")
        assert status == 200, body
        token = csrf_of(body)
        status, headers, body = self.post(
            "/login",
            {
                "login": user,
                "password": PASSWORDS[user] if password is None else password,
                "csrf": token,
                "next": "/",
            },
        )
        return status

    def csrf(self, path: str = "/") -> str:
        status, _, body = self.get(path)
        assert status == 200, body
        return csrf_of(body)


def csrf_of(body: bytes) -> str:
    found = re.search(rb'name="csrf" value="([^"]+)"', body)
    assert found, body[:2000]
    return found.group(1).decode()


def build(tmp: Path, slapd, cyrus, artifacts: Path, spamassassin: Path) -> Site:
    """The site, its service running (``site.served.close()`` stops it)."""
    for user in PASSWORDS:
        if not slapd.admin().search(slapd.people, f"(uid={user})"):
            slapd.add_user(
                user, f"{user[1:].title()} Web", [f"{user}@example.org"], userPassword=PASSWORDS[user]
            )
    cyrus.add_user("wdora")
    home = tmp / "home"
    vaultctl(home, "init")
    edit_config(
        home,
        web={"restore_imap": f"imap://127.0.0.1:{cyrus.imap_port}", "large_message_bytes": LARGE},
        ldap={
            "url": slapd.url,
            "base_dn": slapd.suffix,
            "bind_dn": slapd.admin_dn,
            "bind_password": slapd.admin_password,
        },
        roles={"reviewers": ["wrev"], "admins": ["root", "wadm"]},
    )

    mail = Mail(tmp / "mail", home)
    now = datetime.now(UTC)
    ham = sorted((spamassassin / "easy-ham-1").glob("*.eml"))
    spam = sorted((spamassassin / "spam-1").glob("*.eml"))
    expected: dict = {"wdora": {}, "wbob": {}}

    def week_of(when: datetime) -> str:
        d = when.date()
        return (d - timedelta(days=d.weekday())).isoformat()

    def count(user: str, when: datetime, size: int, is_spam: bool) -> None:
        w = expected[user].setdefault(week_of(when), {"received": 0, "spam": 0, "large": 0, "volume": 0})
        w["received"] += 1
        w["spam"] += is_spam
        w["large"] += size > LARGE
        w["volume"] += size

    # wdora: 24 ham over 6 weeks in her INBOX, 8 spam in Junk, 2 in Sent (not received)
    for n, path in enumerate(ham[:24]):
        when = now - timedelta(days=2 + n * 41 / 24, hours=1)
        data = path.read_bytes()
        mail.put("user/wdora/INBOX", f"h{n}", data, "S" if n % 3 else "", when)
        count("wdora", when, len(data), marked_spam(data))
    for n, path in enumerate(spam[:8]):
        when = now - timedelta(days=3 + n * 5)
        data = path.read_bytes()
        mail.put("user/wdora/Junk", f"s{n}", data, "", when)
        count("wdora", when, len(data), True)
    for n, path in enumerate(ham[24:26]):
        mail.put("user/wdora/Sent", f"o{n}", path.read_bytes(), "S", now - timedelta(days=4))
    quarterly = html_with_attachment()
    mail.put("user/wdora/INBOX", "quarterly", quarterly, "", now - timedelta(days=1))
    count("wdora", now - timedelta(days=1), len(quarterly), False)
    trip = _message(
        "Trip plan", "Ann <ann@example.org>", "wdora@example.org", "Train at 9.", "trip@example.org"
    )
    mail.put("user/wdora/INBOX", "trip", trip, "FS", now - timedelta(days=2))
    count("wdora", now - timedelta(days=2), len(trip), False)
    # wbob: 30 ham (two tagged spam by the filter), a large one
    for n, path in enumerate(ham[30:60]):
        when = now - timedelta(days=1 + n * 40 / 30)
        data = path.read_bytes()
        if n in (3, 11):
            data = b"X-Spam-Flag: YES\nX-Spam-Status: Yes, score=9.1\n" + data
        mail.put("user/wbob/INBOX", f"b{n}", data, "S", when)
        count("wbob", when, len(data), marked_spam(data))
    big = _message(
        "Scans of the contract",
        "Lee <lee@example.org>",
        "wbob@example.org",
        "x" * (LARGE + 5000),
        "scans@example.org",
    )
    mail.put("user/wbob/INBOX", "big", big, "", now - timedelta(days=2))
    count("wbob", now - timedelta(days=2), len(big), False)
    secret = _message(
        "Settlement draft",
        "Counsel <counsel@example.org>",
        "wbob@example.org",
        "Privileged: the draft.",
        "settle@example.org",
    )
    mail.put("user/wbob/INBOX", "settle", secret, "", now - timedelta(days=2))
    count("wbob", now - timedelta(days=2), len(secret), False)
    mail.import_("user/wdora/INBOX", "user/wdora/Junk", "user/wdora/Sent", "user/wbob/INBOX")
    time.sleep(0.05)
    deleted_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(0.05)
    mail.drop("user/wdora/INBOX", "trip")  # wdora deletes the trip plan
    mail.import_("user/wdora/INBOX")
    vaultctl(
        home,
        "hold",
        "create",
        MATTER,
        "--custodian",
        "wbob",
        "--reviewer",
        "wrev",
        "--reason",
        "Smith v. Jones",
    )

    served = start_service(home, web=True)
    assert served.port is not None
    return Site(home, served.port, cyrus, deleted_at, expected, artifacts, served)
