"""The review pages (reviewers and admins): the matters naming the caller, a search within one
matter's custodians with a hit list and its tags, the tag buttons of the message view
(pages.py), and the export of a matter's tagged items (a zip made by the export engine)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from vault.web.auth import require_session
from vault.web.keys import run
from vault.web.pages import PAGE, offset_of, pager
from vault.web.render import DOWNLOAD_CSP, error_page, page


@require_session
async def matters(request: web.Request) -> web.StreamResponse:
    found = await run(request, "review.matters", {})
    return page(request, "review.html", title="Matters", matters=found)


def _hold(found: list[dict], matter: str) -> dict | None:
    return next((h for h in found if h["matter"] == matter), None)


@require_session
async def matter(request: web.Request) -> web.StreamResponse:
    from vault.review import LABELS, TAGS

    name = request.query.get("matter", "")
    hold = _hold(await run(request, "review.matters", {}), name)
    if hold is None:
        return error_page(request, 404, "Not found", f"No active matter {name!r} that you review.")
    q = request.query.get("q", "").strip()
    offset = offset_of(request)
    tagged = (await run(request, "review.tags", {"matter": name}))["items"]
    values: dict = {"hits": [], "total": 0, "prev_link": "", "next_link": "", "shown": ""}
    within = " OR ".join(f"custodian:{c}" for c in hold["custodians"])
    if q:
        found = await run(request, "search", {"query": f"({q}) ({within})", "limit": offset + PAGE})
        hits = found["hits"][offset : offset + PAGE]
        for h in hits:
            h["tag"] = next((tagged[i]["tag"] for i in h["item_ids"] if i in tagged), "")
        values.update(
            hits=hits,
            total=found["total"],
            **pager("/review/matter", {"matter": name, "q": q}, offset, found["total"], len(hits)),
        )
    return page(
        request,
        "matter.html",
        title=f"Matter {name}",
        hold=hold,
        matter=name,
        q=q,
        action="/review/matter",
        scope=", ".join(hold["custodians"]),
        tagged=sorted(tagged.items()),
        tags=TAGS,
        labels=LABELS,
        **values,
    )


@require_session
async def tag(request: web.Request) -> web.StreamResponse:
    form = request["form"]
    matter_name, item = str(form.get("matter") or ""), str(form.get("item") or "")
    await run(request, "review.tag", {"matter": matter_name, "item": item, "tag": str(form.get("tag") or "")})
    from urllib.parse import urlencode

    raise web.HTTPSeeOther(location="/mail/message?" + urlencode({"item": item, "matter": matter_name}))


@require_session
async def export(request: web.Request) -> web.StreamResponse:
    form = request["form"]
    matter_name = str(form.get("matter") or "")
    wanted = [str(t) for t in form.getall("tags", [])] or ["responsive"]
    made = await run(request, "review.export", {"matter": matter_name, "tags": wanted})
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{_safe(made["filename"])}"',
                "Content-Security-Policy": DOWNLOAD_CSP,
                "X-Export-Items": str(made["items"]),
                "X-Export-Manifest-Sha256": made["manifest_sha256"],
            }
        )
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        with open(made["path"], "rb") as f:
            while chunk := await loop.run_in_executor(None, f.read, 1 << 20):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        made["cleanup"]()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:120] or "export.zip"


def routes(app: web.Application) -> None:
    app.router.add_get("/review", matters)
    app.router.add_get("/review/matter", matter)
    app.router.add_post("/review/tag", tag)
    app.router.add_post("/review/export", export)
