"""What the web service's handlers share through the application: the config, the service's
one writer (``WRITE``) and its operations (``RUN``), and how a handler calls them off the
event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

Writer = Callable[[Callable[[Any], Any]], Any]
# run(op, caller, params): an operation of the service (vault/service/ops.py, web_ops.py)
Runner = Callable[[str, Any, dict], Any]
CONFIG: web.AppKey[Any] = web.AppKey("config")
WRITE: web.AppKey[Writer] = web.AppKey("write")
RUN: web.AppKey[Runner] = web.AppKey("run")


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def run(request: web.Request, op: str, params: dict) -> Any:
    """An operation of the service for the logged-in caller: the engine checks the roles,
    records a refusal and audits the reads."""
    return await in_thread(request.app[RUN], op, request["session"].caller, params)
