"""Login / Logout, paired into sessions by ``vnd.cmu.sessionId``.

A session is the ledger item ``session:<id>``: session.login opens it, session.logout
closes it and carries the login time and the duration. A Logout whose Login the catalog
does not hold yet is postponed (the Login may still be on its way); after
``LOGIN_WAIT_SECONDS`` it is recorded unpaired (a Login Cyrus never delivered).
"""

from __future__ import annotations

from vault.entries import Kind
from vault.ingest.context import Postpone
from vault.ingest.worker.handlers.common import entry
from vault.ingest.worker.handlers.event import Event
from vault.model import now, parse_time

LOGIN_WAIT_SECONDS = 600
SESSION_FIELDS = ("service", "clientIP", "clientPort", "serverDomain", "serverPort", "pid")


def session_item(session_id: str | None) -> str | None:
    return f"session:{session_id}" if session_id else None


def _data(ev: Event) -> dict:
    return {f: ev.get(f) for f in SESSION_FIELDS if ev.get(f) is not None}


def login(ev: Event, ctx) -> list:
    return [entry(ctx, ev, Kind.SESSION_LOGIN, session_item(ev.session), _data(ev))]


def logout(ev: Event, ctx) -> list:
    item = session_item(ev.session)
    data = _data(ev)
    opened = ctx.catalog.session(item) if item else None
    if opened is None:
        age = (now() - parse_time(ev.time)).total_seconds() if ev.time else LOGIN_WAIT_SECONDS
        if item and age < LOGIN_WAIT_SECONDS:
            raise Postpone(f"Logout of session {ev.session}: its Login is not in the archive yet")
        data["login_time"] = None
        data["unpaired"] = True
    else:
        data["login_time"] = opened["login_at"]
        if ev.time:
            data["duration_seconds"] = round(
                (parse_time(ev.time) - parse_time(opened["login_at"])).total_seconds(), 3
            )
    return [entry(ctx, ev, Kind.SESSION_LOGOUT, item, data)]
