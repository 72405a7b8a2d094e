"""The pages' HTML: Jinja2 templates (vault/web/templates/, autoescaped), the local stylesheet
(vault/web/static/), and the security headers every answer of the web service carries.

No page runs a script or loads anything from another origin: the Content-Security-Policy
allows the stylesheet of this origin and nothing else (no script at all, no frames, forms
posting only here), so even text that slipped past escaping could not act.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

HERE = Path(__file__).parent
STATIC = HERE / "static"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # and so the Origin of our own forms is sent, not "null"
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
DOWNLOAD_CSP = "default-src 'none'; sandbox"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_env.filters["when"] = lambda text: text[:16].replace("T", " ") if text else ""


def page(request: web.Request, template: str, status: int = 200, **values) -> web.Response:
    session = request.get("session")
    text = _env.get_template(template).render(
        session=session,
        csrf=session.csrf if session is not None else "",
        roles=sorted(session.caller.roles) if session is not None else [],
        path=request.path,
        **values,
    )
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8")


def error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return page(request, "error.html", status=status, title=title, message=message)


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(body=(STATIC / "vault.css").read_bytes(), content_type="text/css")


def _secure(request: web.Request, headers) -> None:
    for key, value in SECURITY_HEADERS.items():
        headers.setdefault(key, value)
    if request.secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


@web.middleware
async def security_headers(request: web.Request, handler):
    try:
        response = await handler(request)
    except web.HTTPException as e:
        _secure(request, e.headers)
        raise
    _secure(request, response.headers)
    return response
