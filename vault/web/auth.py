"""Who is on the other end of a page request: login by LDAP bind, the session, CSRF checks,
and the audit of every refusal.

- ``GET /login`` shows the form with a token bound to a fresh pre-login cookie; ``POST
  /login`` checks that token, the throttle of failed logins, then binds to the directory as
  the user's own entry with their password (vault/directory.py ``authenticate``). The caller
  is then made exactly as for a local caller (vault/identity.py ``caller_of``: directory id,
  roles from ``[roles]`` and the user's LDAP groups), held by a new session.
- Every other page needs a session (``require_session``), whose caller's roles are taken
  afresh at each request (``current_roles``): a role removed from ``[roles]`` (and the
  service sent SIGHUP) is gone at the caller's next request, one removed from their LDAP
  groups within ``GROUPS_TTL``. Without a session, a browser's GET is
  sent to the login page and anything else gets 401; both are ``access.refused`` entries
  (actor ``web:anonymous``; at most ``AUDIT_BURST`` per client address a minute, the rest
  counted into the next one, so that nobody can fill the ledger from outside).
- Every POST must carry the session's CSRF token (``csrf``), and an ``Origin`` header, when
  the browser sends one, must be this service's: else 403, audited.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vault.entries import Kind
from vault.web.keys import CONFIG, WRITE, in_thread
from vault.web.render import error_page, page
from vault.web.sessions import (
    GROUPS_TTL,
    LOGIN_COOKIE,
    LoginThrottle,
    LoginTokens,
    Session,
    SessionStore,
    cookie_name,
    tokens_match,
)

log = logging.getLogger("vault.web.auth")

ANONYMOUS = "web:anonymous"
AUDIT_BURST = 10  # unauthenticated refusals recorded per client address per minute
MAX_FORM = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STORE: web.AppKey[SessionStore] = web.AppKey("sessions")
THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("throttle")
TOKENS: web.AppKey[LoginTokens] = web.AppKey("login_tokens")
BUDGET: web.AppKey[AuditBudget] = web.AppKey("audit_budget")
TLS: web.AppKey[bool] = web.AppKey("tls")


class AuditBudget:
    """How many unauthenticated refusals of one address to record this minute."""

    def __init__(self, burst: int = AUDIT_BURST, clock: Callable[[], float] = time.monotonic):
        self.burst, self.clock = burst, clock
        self._seen: dict[str, tuple[float, int, int]] = {}  # address -> (minute start, recorded, dropped)
        self._lock = threading.Lock()

    def take(self, address: str) -> int | None:
        """None: do not record this one; else record it, with this many dropped before it."""
        now = self.clock()
        with self._lock:
            start, recorded, dropped = self._seen.get(address, (now, 0, 0))
            if now - start >= 60:
                start, recorded = now, 0
            if recorded >= self.burst:
                self._seen[address] = (start, recorded, dropped + 1)
                return None
            self._seen[address] = (start, recorded + 1, 0)
            if len(self._seen) > 10_000:
                self._seen = {a: v for a, v in self._seen.items() if now - v[0] < 60}
            return dropped


def setup(app: web.Application, config, tls: bool) -> None:
    web_config = config["web"]
    app[STORE] = SessionStore(
        web_config["session_idle_minutes"] * 60.0, web_config["session_max_hours"] * 3600.0
    )
    app[THROTTLE] = LoginThrottle(web_config["login_attempts"], web_config["login_window_minutes"] * 60.0)
    app[TOKENS] = LoginTokens()
    app[BUDGET] = AuditBudget()
    app[TLS] = tls
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)


def remote(request: web.Request) -> str:
    return request.remote or "unknown"


async def audit_anonymous(request: web.Request, action: str, why: str, **extra: Any) -> None:
    """An ``access.refused`` entry for a request nobody logged in made (within the budget)."""
    dropped = request.app[BUDGET].take(remote(request))
    if dropped is None:
        return
    data = {
        "operation": "web",
        "action": action,
        "why": why,
        "method": request.method,
        "path": request.path,
        "remote": remote(request),
        **extra,
    }
    if dropped:
        data["unrecorded_before"] = dropped

    def write(vault) -> None:
        vault.record(Kind.ACCESS_REFUSED, item=None, data=data, actor=ANONYMOUS)
        vault.commit()

    await in_thread(request.app[WRITE], write)


async def audit_refused(request: web.Request, session: Session, action: str, why: str) -> None:
    """An ``access.refused`` entry for a logged-in caller the web layer itself refuses."""
    caller: Any = session.caller
    data = {
        "operation": "web",
        "action": action,
        "why": why,
        "login": caller.login,
        "roles": sorted(caller.roles),
        "path": request.path,
        "remote": remote(request),
    }

    def write(vault) -> None:
        vault.record(Kind.ACCESS_REFUSED, item=None, data=data, actor=caller.actor)
        vault.commit()

    await in_thread(request.app[WRITE], write)


def _wants_html(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def _session_of(request: web.Request) -> Session | None:
    return request.app[STORE].get(request.cookies.get(cookie_name(request.app[TLS])))


def require_session(handler: Handler) -> Handler:
    """The page needs a logged-in caller; a POST also its CSRF token (and our Origin)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        session = _session_of(request)
        if session is None:
            if request.path != "/":  # the landing page itself is no attempt at anything
                await audit_anonymous(request, f"{request.method} {request.path}", "not logged in")
            if _wants_html(request):
                target = request.path_qs if request.path != "/" else "/"
                raise web.HTTPSeeOther(location=f"/login?next={_quote(target)}")
            return error_page(request, 401, "Log in first", "This page needs you to log in.")
        await in_thread(current_roles, request.app[CONFIG], session, request.app[STORE].clock())
        request["session"] = session
        if request.method == "POST":
            form = await request.post()
            request["form"] = form
            origin = request.headers.get("Origin")
            if origin is not None and origin != _origin(request):
                await audit_refused(request, session, f"POST {request.path}", f"foreign Origin {origin!r}")
                return error_page(request, 403, "Refused", "The form came from another site.")
            token = form.get("csrf")
            if not isinstance(token, str) or not tokens_match(session.csrf, token):
                await audit_refused(request, session, f"POST {request.path}", "missing or wrong CSRF token")
                return error_page(
                    request, 403, "Refused", "The form's security token is missing or stale: reload the page."
                )
        return await handler(request)

    return wrapped


def current_roles(config, session: Session, now: float) -> None:
    """Give ``session``'s caller the roles ``[roles]`` gives them now, from their directory
    groups (read again once ``GROUPS_TTL`` has passed since they last were)."""
    from vault.identity import directory_groups, rechecked

    caller: Any = session.caller
    groups = None
    if config["ldap"]["url"] and now - session.groups_read >= GROUPS_TTL:
        groups = directory_groups(config, caller.login)
        session.groups_read = now
    fresh = rechecked(config, caller, groups)
    if fresh.roles != caller.roles:
        log.info(
            "web session of %s: roles now %s (were %s)",
            caller.login,
            ", ".join(sorted(fresh.roles)),
            ", ".join(sorted(caller.roles)),
        )
    session.caller = fresh


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _safe_next(value: Any) -> str:
    text = value if isinstance(value, str) else "/"
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text


def _set_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=request.app[TLS],
        samesite="Strict",
    )


def _login_page(
    request: web.Request, status: int = 200, error: str = "", name: str = "", next_: str = "/"
) -> web.Response:
    cookie = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        status=status,
        title="Log in",
        error=error,
        name=name,
        next=next_,
        login_token=request.app[TOKENS].token(cookie),
    )
    _set_cookie(response, request, LOGIN_COOKIE, cookie, 3600)
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    if _session_of(request) is not None:
        raise web.HTTPSeeOther(location=_safe_next(request.query.get("next")))
    return _login_page(request, next_=_safe_next(request.query.get("next")))


def _authenticate(config, name: str, password: str):
    """(caller, display name) of the user whose password this is, else None."""
    from vault.directory import Directory
    from vault.identity import caller_of

    directory = Directory.from_config(config)
    try:
        user = directory.authenticate(name, password)
    finally:
        directory.close()
    if user is None:
        return None
    return caller_of(config, user.login), user.display_name


async def login(request: web.Request) -> web.StreamResponse:
    from ldap3.core.exceptions import LDAPException

    if request.content_length is not None and request.content_length > MAX_FORM:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_FORM, actual_size=request.content_length)
    form = await request.post()
    name = str(form.get("login") or "").strip()
    password = str(form.get("password") or "")
    next_ = _safe_next(form.get("next"))
    if not request.app[TOKENS].valid(request.cookies.get(LOGIN_COOKIE), str(form.get("csrf") or "")):
        await audit_anonymous(
            request, "log in", "missing or wrong CSRF token of the login form", login=name[:200]
        )
        return _login_page(request, 403, "The login form was stale: please try again.", name, next_)
    config = request.app[CONFIG]
    if not config["ldap"]["url"]:
        return _login_page(
            request, 503, "Logging in needs the directory ([ldap] url), and none is set.", name, next_
        )
    if not name or not password or len(name) > 256:
        return _login_page(request, 400, "Give your name and password.", name[:256], next_)
    keys = (name, remote(request))
    throttle = request.app[THROTTLE]
    if throttle.blocked(*keys):
        await audit_anonymous(request, "log in", "too many failed logins: throttled", login=name)
        return _login_page(request, 429, "Too many failed logins: wait a while, then try again.", name, next_)
    try:
        found = await in_thread(_authenticate, config, name, password)
    except LDAPException as e:
        log.warning("login of %r: directory unreachable: %s", name, e)
        return _login_page(
            request, 503, "The directory cannot be reached just now: try again later.", name, next_
        )
    if found is None:
        throttle.failed(*keys)
        await audit_anonymous(request, "log in", "wrong name or password", login=name)
        return _login_page(request, 401, "Wrong name or password.", name, next_)
    throttle.succeeded(keys[0])
    caller, display = found
    store = request.app[STORE]
    store.end(request.cookies.get(cookie_name(request.app[TLS])))  # never keep a session id across a login
    session = store.create(caller.login, caller, display)
    log.info("web login: %s (%s) from %s", caller.login, ", ".join(sorted(caller.roles)), remote(request))
    response = web.HTTPSeeOther(location=next_)
    _set_cookie(response, request, cookie_name(request.app[TLS]), session.id, None)
    response.del_cookie(LOGIN_COOKIE, path="/")
    raise response


@require_session
async def logout(request: web.Request) -> web.StreamResponse:
    request.app[STORE].end(request["session"].id)
    response = web.HTTPSeeOther(location="/login")
    response.del_cookie(cookie_name(request.app[TLS]), path="/")
    raise response
