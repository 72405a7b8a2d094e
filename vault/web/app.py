"""The web service's aiohttp application (``vaultctl serve`` with ``[web] listen``):

- ``POST /api/rpc``: Bonnie's JSON-RPC client API (vault/web/rpc.py);
- ``GET /freebusy/<user>.ifb?start=..&end=..[&at=T]``: the user's free/busy as a VFREEBUSY
  (vault/groupware/freebusy.py), from their calendars as they were at T (default: now).
  ``start``/``end``: ISO 8601 (``2026-03-01T00:00Z``), iCalendar (``20260301T000000Z``), a date
  or Unix seconds; default now to 8 weeks on;
- the pages for people (vault/web/pages.py, review_pages.py), behind a login by LDAP bind
  (vault/web/auth.py): the SNIFF dashboard, folders at any time, search, self-service
  restore, review. Every answer carries the security headers of vault/web/render.py.

Both need HTTP Basic as an API user (``vaultctl api-user``); a wrong or missing login is 401.
Free/busy is not signed (libkolab fetches it with a plain GET) and shows no event's content,
only when its owner is busy; its reads are audited too (``mail.read``, via ``freebusy``).
Handlers run on the default thread pool: the engines are synchronous, the writes go through
the service's one writer (``write``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import ssl
from datetime import UTC, datetime, timedelta

from aiohttp import web

from vault.entries import Kind
from vault.web.apiusers import ApiUser, ApiUsers, signature_matches
from vault.web.keys import CONFIG, RUN, WRITE, Runner, Writer
from vault.web.rpc import Call, dispatch

log = logging.getLogger("vault.web")

MAX_BODY = 1024 * 1024  # a JSON-RPC request is small
FREEBUSY_DEFAULT = timedelta(weeks=8)
FREEBUSY_MAX = timedelta(days=732)
_USERS: web.AppKey[ApiUsers] = web.AppKey("users")


def _unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text="API user login required (HTTP Basic)\n",
        headers={"WWW-Authenticate": 'Basic realm="vault", charset="UTF-8"'},
    )


def _api_user(request: web.Request) -> ApiUser | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        name, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return request.app[_USERS].authenticate(name, password) if sep else None


async def rpc(request: web.Request) -> web.Response:
    user = _api_user(request)
    if user is None:
        return _unauthorized()
    body = await request.read()
    end_user = request.headers.get("X-Request-User", "").strip()
    sent = request.headers.get("X-Request-Sign", "")
    signed = bool(end_user and sent) and signature_matches(user.secret, end_user, body, sent)
    call = Call(request.app[CONFIG], user.name, end_user, signed, request.app[WRITE])
    answer = await asyncio.get_running_loop().run_in_executor(None, dispatch, call, body)
    return web.Response(text=json.dumps(answer, default=str), content_type="application/json")


def parse_when(text: str) -> datetime:
    """A time as a free/busy query gives it (see the module's docstring)."""
    from vault.model import parse_time

    text = text.strip()
    if len(text) == 8 and text.isdigit():  # 20260301: a date
        text = f"{text[:4]}-{text[4:6]}-{text[6:8]}"
    elif text.isdigit():  # Unix seconds
        return datetime.fromtimestamp(int(text), UTC)
    if len(text) >= 15 and text[8] == "T" and text[:8].isdigit():  # 20260301T000000Z
        text = (
            f"{text[:4]}-{text[4:6]}-{text[6:8]}T{text[9:11]}:{text[11:13]}:{text[13:15]}{text[15:] or 'Z'}"
        )
    if len(text) == 10 and text[4] == "-":
        text += "T00:00Z"
    return parse_time(text).astimezone(UTC)


async def freebusy(request: web.Request) -> web.Response:
    from vault.model import now

    api_user = _api_user(request)
    if api_user is None:
        return _unauthorized()
    login = request.match_info["user"]
    try:
        q = request.query
        start = parse_when(q["start"]) if q.get("start") else now().replace(minute=0, second=0, microsecond=0)
        end = parse_when(q["end"]) if q.get("end") else start + FREEBUSY_DEFAULT
        at = parse_when(q["at"]) if q.get("at") else now()
    except ValueError as e:
        raise web.HTTPBadRequest(text=f"{e}\n") from None
    if end <= start or end - start > FREEBUSY_MAX:
        raise web.HTTPBadRequest(text=f"end must follow start, by at most {FREEBUSY_MAX.days} days\n")
    config, write = request.app[CONFIG], request.app[WRITE]
    body = await asyncio.get_running_loop().run_in_executor(
        None, free_busy, config, write, api_user.name, login, start, end, at
    )
    return web.Response(body=body, content_type="text/calendar", charset="utf-8")


def free_busy(
    config, write, api_user: str, login: str, start: datetime, end: datetime, at: datetime
) -> bytes:
    """The VFREEBUSY of ``login``, its read recorded first."""
    from vault.archive import Vault
    from vault.groupware.freebusy import busy_periods, events_at, render
    from vault.groupware.mailboxes import Namespace
    from vault.groupware.objects import ObjectIndex
    from vault.model import format_time, now

    namespace = Namespace(config["groupware"]["default_domain"])
    vault, objects = Vault.open(config, catch_up=False), ObjectIndex.from_config(config)
    try:
        events, folders = events_at(vault, objects, namespace, login, at)
    finally:
        objects.close()
        vault.close()
    periods = busy_periods(events, start, end)
    data = {
        "via": "freebusy",
        "method": "freebusy",
        "api_user": api_user,
        "user": login,
        "folders": folders,
        "start": format_time(start),
        "end": format_time(end),
        "at": format_time(at),
        "periods": len(periods),
    }

    def record(v) -> None:
        v.record(Kind.MAIL_READ, item=None, data=data, actor=f"api:{api_user}")
        v.commit()

    write(record)
    domain = config["groupware"]["default_domain"]
    address = login if "@" in login or not domain else f"{login}@{domain}"
    return render(address, periods, start, end, now())


def make_app(config, write: Writer, run: Runner | None = None, *, tls: bool = False) -> web.Application:
    """The application: ``write(fn)`` runs ``fn(vault)`` with the vault's one writer; with
    ``run`` (the service's operations) also the pages (vault/web/pages.py), behind a login."""
    from vault.web import auth, pages, review_pages
    from vault.web.render import security_headers, stylesheet

    app = web.Application(client_max_size=MAX_BODY, middlewares=[security_headers, pages.errors])
    app[CONFIG] = config
    app[_USERS] = ApiUsers.from_config(config)
    app[WRITE] = write
    app.router.add_post("/api/rpc", rpc)
    app.router.add_get("/freebusy/{user}.ifb", freebusy)
    if run is not None:
        app[RUN] = run
        auth.setup(app, config, tls)
        app.router.add_get("/static/vault.css", stylesheet)
        pages.routes(app)
        review_pages.routes(app)
    return app


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"[web] listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


async def start(config, write, run: Runner | None = None) -> web.AppRunner:
    """Serve the application on ``[web] listen`` (HTTPS with ``tls_cert`` and ``tls_key``)."""
    host, port = parse_listen(config["web"]["listen"])
    context = None
    if config["web"]["tls_cert"] or config["web"]["tls_key"]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(config.path("web", "tls_cert"), config.path("web", "tls_key"))
    runner = web.AppRunner(make_app(config, write, run, tls=context is not None), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=context).start()
    log.info("web service on %s://%s:%d", "https" if context else "http", host, port)
    return runner
