"""The web pages (server-side HTML; no script): a user's SNIFF dashboard, their folders at
any time, their search, and restore into their live mailbox; a reviewer's matters, search,
message view, tags and export (vault/web/review_pages.py).

Each page runs the same engine operations the CLI and the local API run, with the logged-in
caller (vault/service/ops.py and web_ops.py, reached through ``run``: the service passes it
in, so this package never imports the service): the roles are checked, refusals recorded and
every read of mail audited there, not here.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from vault.identity import Forbidden
from vault.web.auth import require_session
from vault.web.keys import CONFIG, run
from vault.web.render import DOWNLOAD_CSP, error_page, page
from vault.web.svg import bars_with_median, percent, size

PAGE = 25


@web.middleware
async def errors(request: web.Request, handler):
    """Engine errors as pages: refused 403, not found 404, bad input 400 (the API's own
    routes answer their errors themselves)."""
    if request.path.startswith(("/api/", "/freebusy/")):
        return await handler(request)
    try:
        return await handler(request)
    except Forbidden as e:
        return error_page(request, 403, "Refused", str(e))
    except LookupError as e:
        return error_page(request, 404, "Not found", str(e).strip("'\""))
    except ValueError as e:  # BadRequest, QuerySyntaxError, a bad time
        return error_page(request, 400, "Cannot do that", str(e))


def offset_of(request: web.Request) -> int:
    try:
        return max(0, int(request.query.get("offset", "0")))
    except ValueError:
        return 0


def pager(base: str, keep: dict, offset: int, total: int, count: int, size_: int = PAGE) -> dict:
    def link(at: int) -> str:
        return f"{base}?{urlencode({**keep, 'offset': at})}"

    return {
        "prev_link": link(max(0, offset - size_)) if offset > 0 else "",
        "next_link": link(offset + size_) if offset + count < total else "",
        "shown": f"{offset + 1}–{offset + count} of {total}" if count else "",
    }


@require_session
async def home(request: web.Request) -> web.StreamResponse:
    return page(request, "home.html", title="vault")


# ---------------------------------------------------------------- SNIFF


@require_session
async def dashboard(request: web.Request) -> web.StreamResponse:
    session = request["session"]
    site = request.query.get("site") == "1"
    user = request.query.get("user") or session.login
    board = await run(request, "sniff", {"site": site, "user": user} if site else {"user": user})
    weeks = board["weeks"]
    users = board["users"]
    if site and user not in users:
        user = next(iter(users), user)
    mine = users.get(user) or [dict.fromkeys(("received", "spam", "large", "volume"), 0)] * len(weeks)
    med = board["median"]
    charts = [
        {
            "key": key,
            "title": title,
            "svg": bars_with_median(
                f"{title}: {user} and the site median",
                weeks,
                [w[key] for w in mine],
                [m[key] for m in med],
                fmt,
                top,
            ),
        }
        for key, title, fmt, top in (
            ("received", "Messages received", lambda v: f"{v:.0f}", None),
            ("spam", "Share marked spam", percent, 1.0),
            ("large", "Share of large mail", percent, 1.0),
            ("volume", "Volume received", size, None),
        )
    ]
    rows = [
        {
            "week": weeks[i],
            "received": int(w["received"]),
            "m_received": f"{med[i]['received']:g}",
            "spam": percent(w["spam"]),
            "m_spam": percent(med[i]["spam"]),
            "large": percent(w["large"]),
            "m_large": percent(med[i]["large"]),
            "volume": size(w["volume"]),
            "m_volume": size(med[i]["volume"]),
        }
        for i, w in enumerate(mine)
    ][::-1]
    site_table = []
    if site:
        for u, per_week in users.items():
            n = sum(w["received"] for w in per_week)
            site_table.append(
                {
                    "user": u,
                    "received": int(n),
                    "spam": percent(sum(w["spam"] * w["received"] for w in per_week) / n) if n else "–",
                    "large": percent(sum(w["large"] * w["received"] for w in per_week) / n) if n else "–",
                    "volume": size(sum(w["volume"] for w in per_week)),
                }
            )
    return page(
        request,
        "dashboard.html",
        title="Site view" if site else "My mail at a glance",
        who=user,
        weeks=weeks,
        charts=charts,
        rows=rows,
        large=size(board["large_bytes"]),
        site_users=sorted(users) if site else [],
        site_table=site_table,
    )


# ---------------------------------------------------------------- self-service


@require_session
async def folders(request: web.Request) -> web.StreamResponse:
    at = request.query.get("at") or None
    answer = await run(request, "browse", {"at": at})
    return page(
        request,
        "mail.html",
        title="My folders",
        folders=answer["folders"],
        at=answer["at"],
        at_shown=at or "",
    )


@require_session
async def folder(request: web.Request) -> web.StreamResponse:
    mailbox = request.query.get("mailbox", "")
    at = request.query.get("at") or None
    offset = offset_of(request)
    answer = await run(request, "browse", {"at": at, "mailbox": mailbox, "offset": offset, "limit": PAGE})
    keep = {"mailbox": answer["mailbox"], "at": answer["at"]}
    return page(
        request,
        "folder.html",
        title=answer["mailbox"],
        mailbox=answer["mailbox"],
        at=answer["at"],
        at_shown=at or "",
        total=answer["total"],
        messages=answer["messages"],
        **pager("/mail/folder", keep, offset, answer["total"], len(answer["messages"])),
    )


@require_session
async def message(request: web.Request) -> web.StreamResponse:
    from vault.review import LABELS, TAGS

    item = request.query.get("item", "")
    matter = request.query.get("matter") or ""
    shown = await run(request, "message", {"item": item})
    current = ""
    if matter:
        current = (await run(request, "review.tags", {"item": item}))["tags"].get(matter, "")
    subject = next((v for k, v in shown["headers"] if k == "Subject"), "") or "(no subject)"
    return page(
        request,
        "message.html",
        title=subject,
        m=shown,
        matter=matter,
        current_tag=current,
        tags=TAGS,
        labels=LABELS,
    )


@require_session
async def raw(request: web.Request) -> web.StreamResponse:
    item = request.query.get("item", "")
    params: dict = {"item": item}
    if request.query.get("index") is not None:
        try:
            params["index"] = int(request.query["index"])
        except ValueError:
            return error_page(request, 400, "Cannot do that", "index must be a number")
    got = await run(request, "message.raw", params)
    safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in got["filename"])[:120] or "download"
    return web.Response(
        body=got["data"],
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{safe_name}"',
            "Content-Security-Policy": DOWNLOAD_CSP,
            "X-Original-Content-Type": got["content_type"][:100],
        },
    )


@require_session
async def restore_form(request: web.Request) -> web.StreamResponse:
    folder_name = request.app[CONFIG]["web"]["restore_folder"]
    if not request.app[CONFIG]["web"]["restore_imap"]:
        return error_page(
            request, 400, "No restore here", "Self-service restore is off ([web] restore_imap)."
        )
    uid = request.query.get("uid")
    return page(
        request,
        "restore.html",
        title="Restore",
        mailbox=request.query.get("mailbox", ""),
        uid=int(uid) if uid and uid.isdigit() else None,
        at=request.query.get("at", ""),
        folder=folder_name,
    )


@require_session
async def restore(request: web.Request) -> web.StreamResponse:
    form = request["form"]
    params: dict = {
        "mailbox": str(form.get("mailbox") or ""),
        "at": str(form.get("at") or "") or None,
        "password": str(form.get("password") or ""),
    }
    uid = str(form.get("uid") or "")
    if uid:
        if not uid.isdigit():
            return error_page(request, 400, "Cannot do that", "uid must be a number")
        params["uid"] = int(uid)
    result = await run(request, "restore.live", params)
    return page(request, "restored.html", title="Restored", result=result, folder=result["folder"])


@require_session
async def search(request: web.Request) -> web.StreamResponse:
    q = request.query.get("q", "").strip()
    offset = offset_of(request)
    values: dict = {"q": q, "action": "/search", "matter": "", "hits": [], "total": 0, "scope": ""}
    if q:
        found = await run(request, "search", {"query": q, "limit": offset + PAGE})
        hits = found["hits"][offset : offset + PAGE]
        values.update(
            hits=hits,
            total=found["total"],
            scope=f"{found['custodian']}'s mail" if found.get("custodian") else "",
            **pager("/search", {"q": q}, offset, found["total"], len(hits)),
        )
    return page(request, "search.html", title="Search", **values)


def routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/mail", folders)
    app.router.add_get("/mail/folder", folder)
    app.router.add_get("/mail/message", message)
    app.router.add_get("/mail/raw", raw)
    app.router.add_get("/mail/restore", restore_form)
    app.router.add_post("/mail/restore", restore)
    app.router.add_get("/search", search)
