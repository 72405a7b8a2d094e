"""The pages by raw HTTP against the real service (tests/web/site.py): login by LDAP bind,
sessions and their cookie, CSRF, the throttle, 401/403 and their audit entries, the SNIFF
figures, sanitised message view and downloads, review tags and export, and a self-service
restore seen over IMAP in the real Cyrus."""

from __future__ import annotations

import email
import email.policy
import imaplib
import io
import json
import re
import subprocess
import time
import zipfile
from html import unescape

import pytest

from tests.web.site import MATTER, PASSWORDS, SCRIPT_MARK, Client, csrf_of, html_with_attachment
from vault.testing.cli import vaultctl_argv
from vault.testing.cyrus_server import ADMIN
from vault.testing.serve import edit_config

pytestmark = [pytest.mark.slapd, pytest.mark.cyrus]


def refusals(site, **match) -> list[dict]:
    out = []
    for e in site.audit():
        if e["kind"] != "access.refused":
            continue
        if all(e["data"].get(k) == v or e.get(k) == v for k, v in match.items()):
            out.append(e)
    return out


def item_of(site, client: Client, folder: str, subject: str) -> str:
    status, _, body = client.get(f"/mail/folder?mailbox={folder}")
    assert status == 200, body
    text = body.decode()
    for row in text.split('<tr class="message">')[1:]:
        if subject in row:
            found = re.search(r'item=([^"&]+)', row)
            assert found, row
            return unescape(found.group(1)).replace("%3A", ":")
    raise AssertionError(f"{subject!r} not in {folder}")


def search_item(client: Client, q: str, path: str = "/search") -> str:
    from urllib.parse import quote, unquote

    status, _, body = client.get(f"{path}{'&' if '?' in path else '?'}q={quote(q)}")
    assert status == 200, body
    found = re.search(rb'href="/mail/message\?item=([^"&]+)', body)
    assert found, body[-3000:]
    return unquote(found.group(1).decode())


def restored_copies(site, message_id: str) -> int:
    imap = site.cyrus.imap("wdora")
    try:
        if imap.select("INBOX/Restored", readonly=True)[0] != "OK":
            return 0
        typ, data = imap.search(None, "HEADER", "Message-ID", message_id)
        return len(data[0].split())
    finally:
        imap.logout()


def test_unauthenticated_requests_get_401_or_the_login_page_and_are_audited(pages_site):
    client = pages_site.client()
    status, headers, _ = client.get("/mail/message?item=x:1:1", html=False)
    assert status == 401
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    status, headers, _ = client.get("/mail?at=2026-01-01T00:00Z")
    assert (
        status == 303 and headers["Location"].startswith("/login?next=") and "/mail?at" in headers["Location"]
    )
    status, _, _ = client.post("/mail/restore", {"mailbox": "user/wdora/INBOX", "password": "x"})
    assert status == 401
    found = refusals(pages_site, actor="web:anonymous", path="/mail/message")
    assert found and found[-1]["data"]["why"] == "not logged in"
    assert refusals(pages_site, actor="web:anonymous", path="/mail/restore")


def test_login_sets_a_strict_session_cookie_and_logout_ends_it(pages_site):
    client = pages_site.client()
    assert client.login("wdora") == 303
    cookie = next(h for h in client.set_cookie_headers if h.startswith("vault="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback here; over TLS: __Host-vault, Secure
    assert len(client.cookies["vault"]) >= 43  # 256 bits, URL-safe base64
    status, headers, body = client.get("/")
    assert status == 200 and b"wdora" in body
    for key in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"):
        assert key in headers
    token = csrf_of(body)
    old = client.cookies["vault"]
    status, _, _ = client.post("/logout", {"csrf": token})
    assert status == 303
    stale = Client(pages_site.port)
    stale.cookies["vault"] = old
    assert stale.get("/mail", html=False)[0] == 401


def test_a_wrong_password_is_refused_and_audited_and_the_throttle_holds(pages_site):
    client = pages_site.client()
    assert client.login("wcarl", "not-his") == 401
    found = refusals(pages_site, actor="web:anonymous", action="log in", login="wcarl")
    assert found and found[-1]["data"]["why"] == "wrong name or password"
    assert "not-his" not in json.dumps(found)  # never a password in the ledger
    for _ in range(4):
        assert client.login("wcarl", "still-wrong") == 401
    assert client.login("wcarl") == 429  # the right password, but throttled now
    assert refusals(pages_site, action="log in", why="too many failed logins: throttled")
    # an empty password is never an (unauthenticated) LDAP bind
    assert pages_site.client().login("wdora", "") in (400, 401)


def test_a_form_without_its_csrf_token_is_refused_and_audited(pages_site):
    client = pages_site.client()
    assert client.login("wdora") == 303
    status, _, body = client.post(
        "/mail/restore", {"mailbox": "user/wdora/INBOX", "password": PASSWORDS["wdora"]}
    )
    assert status == 403 and b"security token" in body
    status, _, _ = client.post("/mail/restore", {"mailbox": "user/wdora/INBOX", "csrf": "forged"})
    assert status == 403
    found = refusals(pages_site, why="missing or wrong CSRF token")
    assert found and found[-1]["data"]["login"] == "wdora"
    # the login form has its own token
    fresh = pages_site.client()
    fresh.get("/login")
    status, _, _ = fresh.post("/login", {"login": "wdora", "password": PASSWORDS["wdora"], "csrf": "nope"})
    assert status == 403


def test_a_user_reading_anothers_mail_gets_403_and_it_is_audited(pages_site):
    bob = pages_site.client()
    assert bob.login("wbob") == 303
    bobs = item_of(pages_site, bob, "user/wbob/INBOX", "Settlement draft")
    dora = pages_site.client()
    assert dora.login("wdora") == 303
    status, _, body = dora.get(f"/mail/message?item={bobs}")
    assert status == 403, body
    status, _, _ = dora.get(f"/mail/raw?item={bobs}")
    assert status == 403
    status, _, _ = dora.get("/mail/folder?mailbox=user/wbob/INBOX")
    assert status == 403
    found = [e for e in refusals(pages_site, operation="message") if e["data"]["login"] == "wdora"]
    assert found and "is not theirs" in found[-1]["data"]["why"]
    # a user's search never reaches another's mail, nor the review pages
    status, _, body = dora.get("/search?q=settlement")
    assert status == 200 and b"Settlement draft" not in body
    assert dora.get("/review")[0] == 403
    assert dora.get("/dashboard?site=1")[0] == 403


def test_the_dashboard_shows_the_users_weeks_beside_the_site_median(pages_site):
    expected = pages_site.expected
    dora = pages_site.client()
    assert dora.login("wdora") == 303
    status, _, body = dora.get("/dashboard")
    assert status == 200, body
    text = body.decode()
    assert text.count("<svg") == 4 and "<script" not in text
    rows = re.findall(
        r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>(\d+)</td><td class=\"m\">([\d.]+)</td><td>(\d+)%</td>", text
    )
    shown = {week: (int(n), float(median), int(spam)) for week, n, median, spam in rows}
    for week, mine in expected["wdora"].items():
        n, median, spam = shown[week]
        assert n == mine["received"]
        assert spam == round(100 * mine["spam"] / mine["received"])
        others = [u[week]["received"] for u in expected.values() if week in u]
        assert median == pytest.approx(
            sorted(others)[len(others) // 2]
            if len(others) % 2
            else sum(sorted(others)[len(others) // 2 - 1 : len(others) // 2 + 1]) / 2
        )
    admin = pages_site.client()
    assert admin.login("wadm") == 303
    status, _, body = admin.get("/dashboard?site=1&user=wbob")
    assert status == 200 and b'id="site"' in body and b"wdora" in body and b"wbob" in body


def test_a_message_is_shown_as_text_its_html_never_served_and_reads_are_audited(pages_site):
    dora = pages_site.client()
    assert dora.login("wdora") == 303
    item = item_of(pages_site, dora, "user/wdora/INBOX", "Quarterly numbers")
    status, headers, body = dora.get(f"/mail/message?item={item}")
    assert status == 200
    text = body.decode()
    assert "Numbers are up 12%." in text
    assert "<script" not in text and SCRIPT_MARK not in text and "tracker.example" not in text
    assert "script-src" not in headers["Content-Security-Policy"]  # no script may run at all
    assert "q3.csv" in text
    status, headers, data = dora.get(f"/mail/raw?item={item}&index=0")
    assert status == 200 and data == b"quarter,revenue\r\nQ3,1200"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["Content-Type"].startswith("application/octet-stream")
    status, _, whole = dora.get(f"/mail/raw?item={item}")
    assert whole == html_with_attachment()
    reads = [e for e in pages_site.audit() if e["kind"] == "mail.read" and e["item"] == item]
    assert {e["data"]["method"] for e in reads} >= {"message", "download"}
    assert all(e["data"]["via"] == "web" for e in reads)


def test_a_reviewer_searches_a_matter_tags_and_exports(pages_site, tmp_path):
    rev = pages_site.client()
    assert rev.login("wrev") == 303
    status, _, body = rev.get("/review")
    assert status == 200 and MATTER.encode() in body
    item = search_item(rev, "settlement", f"/review/matter?matter={MATTER}")
    status, _, body = rev.get(f"/mail/message?item={item}&matter={MATTER}")
    assert status == 200 and b'id="tagform"' in body
    status, _, _ = rev.post(
        "/review/tag", {"csrf": csrf_of(body), "matter": MATTER, "item": item, "tag": "responsive"}
    )
    assert status == 303
    status, _, body = rev.get(f"/mail/message?item={item}&matter={MATTER}")
    assert b'id="current-tag">Responsive<' in body
    tagged = [e for e in pages_site.audit() if e["kind"] == "review.tagged" and e["item"] == item]
    assert tagged[-1]["data"] == {"matter": MATTER, "tag": "responsive"}
    # tagging wdora's mail (not a custodian of the matter) is refused
    dora = pages_site.client()
    assert dora.login("wdora") == 303
    doras = item_of(pages_site, dora, "user/wdora/INBOX", "Quarterly numbers")
    status, _, _ = rev.post(
        "/review/tag", {"csrf": csrf_of(body), "matter": MATTER, "item": doras, "tag": "responsive"}
    )
    assert status == 403
    status, _, _ = rev.get(f"/mail/message?item={doras}")
    assert status == 403
    status, headers, data = rev.post(
        "/review/export", {"csrf": csrf_of(body), "matter": MATTER, "tags": "responsive"}
    )
    assert status == 200 and headers["Content-Type"] == "application/zip"
    out = tmp_path / "export"
    zipfile.ZipFile(io.BytesIO(data)).extractall(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert item in [r["item"] for r in manifest["items"]]
    assert {r["tag"] for r in manifest["items"]} == {"responsive"}  # nothing tagged otherwise
    done = subprocess.run(
        vaultctl_argv("verify-export", str(out), "--key", str(out / "verifier.key"), home=pages_site.home),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(e["kind"] == "export.made" and e["data"].get("matter") == MATTER for e in pages_site.audit())
    assert not list(pages_site.home.glob(".export-*"))  # the zip is gone once sent


def test_a_role_removed_while_logged_in_is_gone_at_the_next_request(pages_site):
    """The roles of a session are not those of its login: [roles] reloaded (SIGHUP) takes
    effect at the session's next request, both ways, and the refusal is audited."""
    rev = pages_site.client()
    assert rev.login("wrev") == 303
    status, _, body = rev.get("/review")
    assert status == 200 and MATTER.encode() in body
    assert b'href="/review"' in rev.get("/")[2]
    config = pages_site.home / "config.toml"
    text = config.read_text()
    before = len(refusals(pages_site, login="wrev", operation="review.matters"))
    try:
        edit_config(pages_site.home, roles={"reviewers": []})
        pages_site.served.hup("roles reloaded")
        status, _, body = rev.get("/review")
        assert status == 403, body
        status, _, _ = rev.get(f"/review/matter?matter={MATTER}&q=settlement")
        assert status == 403
        status, _, body = rev.get("/")  # still logged in: a user now
        assert status == 200 and b'href="/review"' not in body
    finally:
        config.write_text(text)
        pages_site.served.hup("roles reloaded")
    refused = refusals(pages_site, login="wrev", operation="review.matters")
    assert len(refused) == before + 2
    assert all(e["data"]["roles"] == ["user"] for e in refused[before:])
    status, _, body = rev.get("/review")  # the same session: the role is back
    assert status == 200 and MATTER.encode() in body


def test_a_user_restores_a_deleted_message_into_cyrus_over_http(pages_site):
    dora = pages_site.client()
    assert dora.login("wdora") == 303
    at = pages_site.deleted_at
    status, _, body = dora.get(f"/mail/folder?mailbox=user/wdora/INBOX&at={at}")
    assert status == 200 and b"Trip plan" in body
    status, _, now_body = dora.get("/mail/folder?mailbox=user/wdora/INBOX")
    assert b"Trip plan" not in now_body  # deleted since
    link = re.search(rb'uid=(\d+)&amp;at=[^"]*">Restore', body.split(b"Trip plan", 1)[1])
    assert link, body
    uid = link.group(1).decode()
    status, _, form = dora.get(f"/mail/restore?mailbox=user/wdora/INBOX&uid={uid}&at={at}")
    token = csrf_of(form)
    status, _, body = dora.post(
        "/mail/restore",
        {"csrf": token, "mailbox": "user/wdora/INBOX", "uid": uid, "at": at, "password": "wrong"},
    )
    assert status == 400 and b"refused the login" in body and b"wrong" not in body.split(b"<main>", 1)[1]
    before = restored_copies(pages_site, "trip@example.org")
    status, _, body = dora.post(
        "/mail/restore",
        {"csrf": token, "mailbox": "user/wdora/INBOX", "uid": uid, "at": at, "password": PASSWORDS["wdora"]},
    )
    assert status == 200 and b'id="restored">1 message' in body, body
    assert b"<strong>INBOX/Restored</strong>" in body
    imap = pages_site.cyrus.imap("wdora")
    try:
        typ, _ = imap.select("INBOX/Restored")  # altnamespace off: the personal namespace is INBOX/
        assert typ == "OK"
        typ, data = imap.search(None, "HEADER", "Message-ID", "trip@example.org")
        nums = data[0].split()
        assert len(nums) == before + 1  # the browser test may have restored it once already
        typ, fetched = imap.fetch(nums[-1], "(FLAGS INTERNALDATE BODY.PEEK[])")
        meta, raw = fetched[0]
        assert b"\\Flagged" in meta and b"\\Seen" in meta
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Subject"] == "Trip plan"
        when = imaplib.Internaldate2tuple(meta)
        assert when is not None and time.time() - time.mktime(when) > 86400  # its date then, not now
    finally:
        imap.logout()
    restores = [
        e for e in pages_site.audit() if e["kind"] == "restore.done" and e["data"].get("via") == "web"
    ]
    assert restores and restores[-1]["data"]["restored"] == 1
    assert PASSWORDS["wdora"] not in json.dumps(restores)
    # another user's folder cannot be restored
    status, _, _ = dora.post(
        "/mail/restore",
        {"csrf": token, "mailbox": "user/wbob/INBOX", "at": at, "password": PASSWORDS["wdora"]},
    )
    assert status == 403


def restore_sent(site) -> tuple[int, bytes]:
    """wdora restores her whole Sent folder as it is now, through the form."""
    dora = site.client()
    assert dora.login("wdora") == 303
    token = dora.csrf("/mail")
    status, _, body = dora.post(
        "/mail/restore",
        {"csrf": token, "mailbox": "user/wdora/Sent", "at": "", "password": PASSWORDS["wdora"]},
    )
    return status, body


def test_a_user_restores_a_whole_folder_as_it_was(pages_site):
    status, body = restore_sent(pages_site)
    assert status == 200 and b'id="restored">2 messages of user/wdora/Sent' in body, body
    imap = pages_site.cyrus.imap("wdora")
    try:
        imap.select("INBOX/Restored", readonly=True)
        typ, data = imap.search(None, "SEEN")  # both were \\Seen in Sent
        seen = set(data[0].split())
        typ, data = imap.search(None, "ALL")
        assert len(data[0].split()) >= 2 and len(seen) >= 2
    finally:
        imap.logout()


def test_a_restore_the_mail_server_stops_is_audited_before_it_starts(pages_site):
    """Audit first: the restore is recorded with what is about to leave before the first
    APPEND, then again with what reached the mailbox when the server stops it (no right to
    insert: Cyrus 3.6 with notifications on aborts on SETQUOTA, so no quota)."""
    before = len([e for e in pages_site.audit() if e["kind"] == "restore.done"])
    admin = pages_site.cyrus.imap(ADMIN)
    folder = '"user/wdora/Restored"'
    try:
        admin.create(folder)  # an earlier test may have made it
        typ, data = admin.setacl(folder, "wdora", "lrs")  # may read it, may not add to it
        assert typ == "OK", data
        status, body = restore_sent(pages_site)
    finally:
        admin.setacl(folder, "wdora", "lrswipkxtecdan")
        admin.logout()
    assert status == 400 and b"stopped the restore after 0 messages" in body, body
    restores = [e for e in pages_site.audit() if e["kind"] == "restore.done"][before:]
    assert [(e["data"]["restored"], "error" in e["data"]) for e in restores] == [(2, False), (0, True)]
    assert restores[0]["seq"] < restores[1]["seq"] and PASSWORDS["wdora"] not in json.dumps(restores)


def test_the_restore_forms_mail_server_logins_are_throttled(pages_site):
    """A stolen session cannot try the user's mail password at full speed: after as many
    refused IMAP logins as the web's own throttle allows, the form stops trying."""
    bob = pages_site.client()
    assert bob.login("wbob") == 303  # wbob has no login on the mail server: every try fails
    token = bob.csrf("/mail")
    said = []
    for n in range(6):
        status, _, body = bob.post(
            "/mail/restore",
            {"csrf": token, "mailbox": "user/wbob/INBOX", "at": "", "password": f"guess-{n}"},
        )
        assert status == 400
        said.append(b"too many failed logins" in body)
    assert said == [False] * 5 + [True]  # [web] login_attempts = 5


def test_the_hit_list_pages(pages_site):
    rev = pages_site.client()
    assert rev.login("wrev") == 303
    status, _, first = rev.get(f"/review/matter?matter={MATTER}&q=after:2000-01-01")
    assert status == 200
    total = int(re.search(rb'id="total">(\d+) found', first).group(1))  # type: ignore[union-attr]
    assert total == 32  # wbob's 30 corpus messages, the scans and the settlement draft
    assert first.count(b'<tr class="hit">') == 25 and b'id="next"' in first and b'id="prev"' not in first
    status, _, second = rev.get(f"/review/matter?matter={MATTER}&q=after:2000-01-01&offset=25")
    assert second.count(b'<tr class="hit">') == 7 and b'id="prev"' in second and b'id="next"' not in second
    items = lambda page: re.findall(rb'class="open" href="/mail/message\?item=([^"&]+)', page)  # noqa: E731
    assert len(set(items(first)) | set(items(second))) == 32 and not set(items(first)) & set(items(second))
