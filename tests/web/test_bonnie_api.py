"""Bonnie's client API and free/busy against a real `vaultctl serve` with `[web] listen` on a
loopback port, called with raw HTTP requests built the way Roundcube's libkolab builds them
(kolab_bonnie_api_client: PHP's json_encode of {jsonrpc, method, id, params}, HTTP Basic,
X-Request-User, X-Request-Sign = hex HMAC-SHA256(secret, user + ":" + body)). The vault holds
Kolab objects in several revisions, imported with `vaultctl import` from Maildirs, before the
service started and through it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import quopri
import random
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.core.helpers import ledger_lines
from tests.data import data_file
from vault.testing.cli import vaultctl_argv
from vault.testing.serve import edit_config, start_service

EVENT = "9b4e1f2a-6c1d-4e7a-9f3b-2d5c8a7e6f01"
TASK = "3f8d2c1b-7a6e-4b5d-8c9f-0e1a2b3c4d5e"
CONTACT = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"  # libkolab's contact UIDs: no urn:uuid:
NOTE = "1e2d3c4b-5a69-4788-9a6b-5c4d3e2f1a0b"
JANE = "jane@example.org"
INBOX_MAIL = (
    b"From: bob@example.org\r\nTo: jane@example.org\r\nSubject: lunch?\r\n"
    b"Message-ID: <lunch@example.org>\r\n\r\nat noon\r\n"
)
BERLIN = ZoneInfo("Europe/Berlin")


def vaultctl(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(vaultctl_argv(*args, home=home), capture_output=True, text=True, timeout=300)


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def kolab(name: str) -> bytes:
    return data_file(f"kolab/{name}.eml").read_bytes()


class Maildirs:
    """One Maildir per folder, edited between import runs like a client edits the folder."""

    def __init__(self, root: Path, home: Path):
        self.root, self.home = root, home

    def put(self, folder: str, name: str, data: bytes, flags: str = "") -> None:
        box = self.root / folder.replace("/", "_")
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        for old in (box / "cur").glob(f"{name}:2,*"):
            old.unlink()
        (box / "cur" / f"{name}:2,{flags}").write_bytes(data)

    def drop(self, folder: str, name: str) -> None:
        for old in (self.root / folder.replace("/", "_") / "cur").glob(f"{name}:2,*"):
            old.unlink()

    def update(self, folder: str, old: str, new: str, data: bytes) -> None:
        """A Kolab update: the new message appended, the old one deleted."""
        self.put(folder, new, data)
        self.drop(folder, old)

    def import_all(self, *folders: str) -> None:
        for folder in folders:
            ok(vaultctl(self.home, "import", str(self.root / folder.replace("/", "_")), "--mailbox", folder))


class Client:
    """Roundcube's libkolab Bonnie client, byte for byte where it matters."""

    def __init__(self, port: int, user: str, password: str, secret: str, request_user: str = JANE):
        self.port, self.user, self.password, self.secret = port, user, password, secret
        self.request_user = request_user

    @staticmethod
    def php_json(value) -> bytes:
        # PHP's json_encode: compact, "/" escaped as "\/", non-ASCII as \uXXXX
        return json.dumps(value, separators=(",", ":")).replace("/", "\\/").encode()

    def post(
        self,
        body: bytes,
        *,
        sign: bool = True,
        signature: str | None = None,
        auth: tuple[str, str] | None = None,
    ):
        headers = {
            "Connection": "close",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Request-User": self.request_user,
        }
        if sign:
            headers["X-Request-Sign"] = (
                signature
                or hmac.new(
                    self.secret.encode(), self.request_user.encode() + b":" + body, hashlib.sha256
                ).hexdigest()
            )
        user, password = auth or (self.user, self.password)
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", "/api/rpc", body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def call(self, method: str, params: dict | list | None = None, **kw) -> dict:
        payload: dict = {"jsonrpc": "2.0", "method": method, "id": random.randint(1, 2**31 - 1)}
        if params:
            payload["params"] = params
        status, body = self.post(self.php_json(payload), sign=method != "system.keygen", **kw)
        assert status == 200, body
        answer = json.loads(body)
        assert answer["id"] == payload["id"] and answer["jsonrpc"] == "2.0"
        return answer

    def result(self, method: str, **params):
        answer = self.call(method, params)
        assert "error" not in answer, answer
        return answer["result"]

    def freebusy(self, user: str, query: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        try:
            conn.request("GET", f"/freebusy/{user}.ifb?{query}", headers={"Authorization": f"Basic {auth}"})
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A vault with Jane's groupware folders in several revisions, its service with the web
    service on a free loopback port, and an API user."""
    tmp = tmp_path_factory.mktemp("bonnie")
    home = tmp / "home"
    ok(vaultctl(home, "init"))
    edit_config(home, groupware={"default_domain": "example.org"})
    added = json.loads(ok(vaultctl(home, "api-user", "add", "roundcube", "--json")))
    boxes = Maildirs(tmp / "mail", home)
    times: dict[str, str] = {}
    # revision 1 of everything, imported with the home opened by vaultctl itself
    boxes.put("user/jane/Calendar", "ev1", kolab("event-r1"))
    for single in ("tentative", "transparent", "cancelled"):
        boxes.put("user/jane/Calendar", single, kolab(f"event-{single}"))
    boxes.put("user/jane/Tasks", "t1", kolab("task-r1"))
    boxes.put("user/jane/Contacts", "c1", kolab("contact-r1"))
    boxes.put("user/jane/Notes", "n1", kolab("note-r1"))
    boxes.put("user/jane/INBOX", "m1", INBOX_MAIL)
    boxes.put("user/bob/Calendar", "b1", kolab("event-tentative"))
    folders = (
        "user/jane/Calendar",
        "user/jane/Tasks",
        "user/jane/Contacts",
        "user/jane/Notes",
        "user/jane/INBOX",
        "user/bob/Calendar",
    )
    boxes.import_all(*folders)
    time.sleep(0.2)
    times["after r1"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with start_service(home, web=True) as served:
        assert served.port is not None
        # revision 2, imported through the service (it holds the vault's writer)
        boxes.update("user/jane/Calendar", "ev1", "ev2", kolab("event-r2"))
        boxes.update("user/jane/Tasks", "t1", "t2", kolab("task-r2"))
        boxes.update("user/jane/Contacts", "c1", "c2", kolab("contact-r2"))
        boxes.update("user/jane/Notes", "n1", "n2", kolab("note-r2"))
        boxes.put("user/jane/INBOX", "m1", INBOX_MAIL, flags="S")  # read
        boxes.import_all(*folders[:5])
        # revision 3: the event changed again, the note deleted, the mail flagged
        boxes.update("user/jane/Calendar", "ev2", "ev3", kolab("event-r3"))
        boxes.drop("user/jane/Notes", "n2")
        boxes.import_all("user/jane/Calendar", "user/jane/Notes")
        boxes.put("user/jane/INBOX", "m1", INBOX_MAIL, flags="FS")  # and flagged
        boxes.import_all("user/jane/INBOX")
        client = Client(served.port, "roundcube", added["password"], added["secret"])
        yield home, client, times


def xml_of(name: str) -> str:
    raw = kolab(name).decode()
    part = raw.split("name=kolab.xml", 1)[1].split("\r\n\r\n", 1)[1].rsplit("\r\n--", 1)[0]
    return quopri.decodestring(part.encode()).decode()


def test_the_changelog_lists_each_revision_an_update_being_one(site):
    _, client, _ = site
    log = client.result("event.changelog", uid=EVENT, mailbox="Calendar", msguid=None)
    assert log["uid"] == EVENT
    changes = log["changes"]
    assert [c["op"] for c in changes] == ["APPEND", "APPEND", "APPEND"]  # 3 revisions, no DELETE
    revs = [c["rev"] for c in changes]
    assert revs == sorted(set(revs))
    for c in changes:
        assert c["mailbox"] == "Calendar"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c["date"])
        assert re.fullmatch(r".+ <.+@.+>", c["user"])
        # revisions are deciseconds since 2014-01-01T00:00Z of the change
        when = datetime.fromisoformat(c["date"].replace("Z", "+00:00"))
        assert abs(c["rev"] / 10 - (when - datetime(2014, 1, 1, tzinfo=UTC)).total_seconds()) < 2
    notes = client.result("note.changelog", uid=NOTE, mailbox="Notes")["changes"]
    assert [c["op"] for c in notes] == ["APPEND", "APPEND", "DELETE"]
    created = client.result("event.created", uid=EVENT, mailbox="Calendar")
    last = client.result("event.lastmodified", uid=EVENT, mailbox="Calendar")
    assert (created["rev"], last["rev"]) == (revs[0], revs[-1])
    contacts = client.result("contact.changelog", uid=CONTACT, mailbox="Contacts")["changes"]
    assert len(contacts) == 2
    # the client may know only the message: msguid finds the object
    tasks = client.result("task.changelog", uid=TASK, mailbox="Tasks")["changes"]
    by_msg = client.result("task.changelog", uid="unknown", mailbox="Tasks", msguid=tasks[-1]["msguid"])
    assert by_msg == {"uid": TASK, "changes": tasks}


def test_get_returns_each_revisions_xml(site):
    _, client, _ = site
    revs = [c["rev"] for c in client.result("event.changelog", uid=EVENT, mailbox="Calendar")["changes"]]
    for n, rev in enumerate(revs, 1):
        got = client.result("event.get", uid=EVENT, rev=rev, mailbox="Calendar", msguid=None)
        assert got == {"uid": EVENT, "rev": rev, "xml": xml_of(f"event-r{n}"), "mailbox": "Calendar"}
    raw = client.result("event.rawdata", uid=EVENT, mailbox="Calendar", rev=revs[0], msguid=None)
    assert raw.encode() == kolab("event-r1")
    # the deleted note's last revision still has its content
    notes = client.result("note.changelog", uid=NOTE, mailbox="Notes")["changes"]
    assert "coffee" in client.result("note.get", uid=NOTE, rev=notes[-1]["rev"], mailbox="Notes")["xml"]


def test_diff_names_the_changed_properties(site):
    _, client, _ = site
    revs = [c["rev"] for c in client.result("event.changelog", uid=EVENT, mailbox="Calendar")["changes"]]
    first = client.result(
        "event.diff", uid=EVENT, rev1=revs[0], rev2=revs[1], mailbox="Calendar", msguid=None, instance=None
    )
    assert first["uid"] == EVENT and first["rev"] == revs[1]
    assert {c["property"] for c in first["changes"]} == {"location", "attendee", "exdate"}
    location = next(c for c in first["changes"] if c["property"] == "location")
    assert (location["old"], location["new"]) == ("Room 1", "Room 2")
    assert {c["index"] for c in first["changes"] if c["property"] == "attendee"} == {0, 1}
    second = client.result("event.diff", uid=EVENT, rev1=revs[1], rev2=revs[2], mailbox="Calendar")
    assert second["changes"] == [{"property": "summary", "old": "Team standup", "new": "Team sync"}]
    task = [c["rev"] for c in client.result("task.changelog", uid=TASK, mailbox="Tasks")["changes"]]
    done = client.result("task.diff", uid=TASK, rev1=task[0], rev2=task[1], mailbox="Tasks")
    assert {c["property"] for c in done["changes"]} == {"due", "status", "percent-complete"}


def test_mail_changelog_lists_the_operations_on_a_message(site):
    _, client, _ = site
    log = client.result("mail.changelog", mailbox="INBOX", msguid=1)
    ops = [(c["op"], c.get("flags")) for c in log["changes"]]
    assert ops == [("APPEND", None), ("READ", ["\\Seen"]), ("FLAGSET", ["\\Flagged"])]
    assert all(c["user"].endswith(">") for c in log["changes"])


def test_errors_are_json_rpc_errors_with_http_200(site):
    _, client, _ = site
    body = client.php_json(
        {
            "jsonrpc": "2.0",
            "method": "event.changelog",
            "id": 7,
            "params": {"uid": EVENT, "mailbox": "Calendar"},
        }
    )
    status, raw = client.post(body, signature="0" * 64)
    assert status == 200 and json.loads(raw)["error"]["code"] == -32600
    status, raw = client.post(body, sign=False)
    assert status == 200 and json.loads(raw)["error"]["code"] == -32600
    # signed with another secret: the same
    wrong = Client(client.port, client.user, client.password, "f" * 64)
    assert wrong.call("event.changelog", {"uid": EVENT, "mailbox": "Calendar"})["error"]["code"] == -32600
    assert client.call("event.frobnicate", {"uid": EVENT})["error"]["code"] == -32601
    assert client.call("journal.changelog", {"uid": EVENT, "mailbox": "Calendar"})["error"]["code"] == -32601
    assert client.call("event.changelog", [EVENT, "Calendar"])["error"]["code"] == -32602  # named params only
    assert client.call("event.changelog", {"mailbox": "Calendar"})["error"]["code"] == -32602
    assert (
        client.call("event.get", {"uid": EVENT, "rev": "soon", "mailbox": "Calendar"})["error"]["code"]
        == -32602
    )
    assert (
        client.call("event.get", {"uid": EVENT, "rev": 1, "mailbox": "Calendar"})["error"]["code"] == -32602
    )
    assert client.call("event.changelog", {"uid": EVENT, "mailbox": "Nowhere"})["error"]["code"] == -32602
    status, raw = client.post(b"{not json", signature=None)
    assert status == 200 and json.loads(raw)["error"]["code"] in (-32700, -32600)
    # another user's folder, not shared with Jane (imported: no ACL): refused
    answer = client.call(
        "event.changelog",
        {"uid": "0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9", "mailbox": "Other Users/bob/Calendar"},
    )
    assert answer["error"]["code"] == -32001
    # a wrong API login is HTTP 401, before any JSON-RPC
    status, _ = client.post(body, auth=("roundcube", "wrong"))
    assert status == 401
    key = client.call("system.keygen")["result"]["key"]
    assert re.fullmatch(r"[0-9a-f]{64}", key)


def occurrences_by_hand(
    first_local: datetime, weeks: int, skip=(), moved=None
) -> list[tuple[datetime, datetime]]:
    """The weekly series expanded by hand: local wall time + 7 days, then to UTC."""
    out = []
    for n in range(weeks):
        if n in skip:
            continue
        local = first_local + timedelta(days=7 * n)
        hours = (moved or {}).get(n, (local.hour, local.hour + 1))
        out.append(
            (
                local.replace(hour=hours[0], tzinfo=BERLIN).astimezone(UTC),
                local.replace(hour=hours[1], tzinfo=BERLIN).astimezone(UTC),
            )
        )
    return out


def freebusy_periods(text: str) -> list[tuple[str, datetime, datetime]]:
    unfolded = text.replace("\r\n ", "")
    out = []
    for fbtype, start, end in re.findall(
        r"^FREEBUSY;FBTYPE=([A-Z-]+)[^:]*:(\d{8}T\d{6}Z)/(\d{8}T\d{6}Z)", unfolded, re.M
    ):
        parse = lambda s: datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)  # noqa: E731
        out.append((fbtype, parse(start), parse(end)))
    return out


def test_free_busy_of_a_recurring_event_matches_a_hand_expansion(site):
    _, client, times = site
    status, text = client.freebusy(JANE, "start=20260301T000000Z&end=20260501T000000Z")
    assert status == 200, text
    assert "BEGIN:VFREEBUSY" in text and "ORGANIZER:mailto:jane@example.org" in text.replace("\r\n ", "")
    busy = [(s, e) for t, s, e in freebusy_periods(text) if t == "BUSY"]
    tentative = [(s, e) for t, s, e in freebusy_periods(text) if t == "BUSY-TENTATIVE"]
    # revision 3: 16 March excluded, 23 March moved to 14:00-15:00; DST begins 29 March
    assert busy == occurrences_by_hand(datetime(2026, 3, 2, 10), 6, skip={2}, moved={3: (14, 15)})
    assert tentative == [(datetime(2026, 3, 4, 9, tzinfo=UTC), datetime(2026, 3, 4, 9, 30, tzinfo=UTC))]
    # the transparent birthday (5 March) and the cancelled lunch (6 March) are free
    assert not any(s.day in (5, 6) and s.month == 3 for s, _ in busy)
    # as the calendar was before revision 2: every Monday at 10:00
    status, then = client.freebusy(
        JANE, f"start=2026-03-01T00:00Z&end=2026-05-01T00:00Z&at={times['after r1']}"
    )
    assert status == 200, then
    assert [(s, e) for t, s, e in freebusy_periods(then) if t == "BUSY"] == occurrences_by_hand(
        datetime(2026, 3, 2, 10), 6
    )
    status, _ = client.freebusy(JANE, "start=tomorrow")
    assert status == 400


def test_the_reads_are_in_the_audit_trail(site):
    home, client, _ = site
    client.result("event.changelog", uid=EVENT, mailbox="Calendar")
    entries = json.loads(ok(vaultctl(home, "audit", "--json")))
    reads = [e for e in entries if e["kind"] == "mail.read"]
    methods = {e["data"]["method"] for e in reads}
    assert {"event.changelog", "event.get", "event.diff", "mail.changelog", "freebusy"} <= methods
    rpc = [e for e in reads if e["data"]["via"] == "rpc"]
    assert all(
        e["actor"] == JANE and e["data"]["api_user"] == "roundcube" and e["data"]["user"] == JANE for e in rpc
    )
    assert any(e["data"]["mailbox"] == "user/jane/Calendar" for e in rpc)
    refused = [
        e for e in entries if e["kind"] == "access.refused" and e["data"].get("api_user") == "roundcube"
    ]
    whys = " ".join(e["data"]["why"] for e in refused)
    assert "bad request signature" in whys and "user/bob/Calendar" in whys
    listed = ok(vaultctl(home, "audit"))
    assert "mail.read" in listed


def test_api_users_are_kept_0600_and_never_in_the_ledger(site):
    home, client, _ = site
    users = home / "api-users.json"
    assert users.stat().st_mode & 0o777 == 0o600
    listed = json.loads(ok(vaultctl(home, "api-user", "list", "--json")))
    assert [u["name"] for u in listed] == ["roundcube"] and "secret" not in listed[0]
    assert client.password not in users.read_text()  # hashed
    ledger = b"\n".join(ledger_lines(home / "ledger"))
    assert client.secret.encode() not in ledger and client.password.encode() not in ledger
    # a second user added while the service runs is served at once; removed, refused
    extra = json.loads(ok(vaultctl(home, "api-user", "add", "other", "--json")))
    other = Client(client.port, "other", extra["password"], extra["secret"])
    assert "result" in other.call("system.keygen")
    ok(vaultctl(home, "api-user", "remove", "other"))
    status, _ = other.post(other.php_json({"jsonrpc": "2.0", "method": "system.keygen", "id": 1}), sign=False)
    assert status == 401
    assert os.stat(home).st_mode & 0o077 == 0
