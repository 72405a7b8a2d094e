"""The vault service's local API: HTTP over a unix socket (aiohttp), one route per operation
of vault/service/ops.py. Who calls is read from the socket (SO_PEERCRED: the peer's uid), never
from the request: that uid's login, directory id and roles are the caller's.

``POST /v1/op/<name>`` with a JSON object: ``200 {"result": ...}``, or for the operations
that stream (``restore``, ``export``: vault/restore/stream.py) ``200`` with a tar body;
``403`` refused (and audited), ``400`` malformed, ``404`` no such operation (or no such
folder, item, hold), ``409`` not while the service runs (``rebuild``), ``500`` failed.
Operations run on a thread pool; writes among them queue for the one writer
(vault/service/ops.py); a stream's bytes are made on a thread of its own and sent as they
come, at most a few chunks ahead of the caller.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import threading
from pathlib import Path

from aiohttp import web

from vault.identity import Caller, Forbidden, caller_of, login_of_uid
from vault.service.ops import OPS, BadRequest, Conflict, ServiceHandle, Stream, refused

log = logging.getLogger("vault.service.api")

_PEERCRED = struct.Struct("3i")  # pid, uid, gid
_AHEAD = 4  # chunks a stream may be made ahead of its caller
_END = object()


def peer_uid(request: web.Request) -> int:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None:
        raise web.HTTPForbidden(text=json.dumps({"error": "no peer credentials"}))
    _pid, uid, _gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return uid


def _answer(status: int, **body) -> web.Response:
    return web.Response(status=status, text=json.dumps(body, default=str), content_type="application/json")


class LocalApi:
    def __init__(self, service: ServiceHandle, path: Path):
        self.service = service
        self.path = Path(path)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/v1/op/{name}", self.operation)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_socket():
            self.path.unlink()  # a stale socket of a service that died (the home's lock is ours)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.UnixSite(self._runner, str(self.path))
        await site.start()
        # anyone who can reach the path may connect: the peer's uid decides what it may do
        os.chmod(self.path, 0o666)
        log.info("local API on %s", self.path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self.path.unlink(missing_ok=True)

    def caller(self, uid: int, acting_for: str | None) -> Caller:
        return caller_of(
            self.service.config, login_of_uid(uid), acting_for=acting_for, owner=uid == os.geteuid()
        )

    async def operation(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        op = OPS.get(name)
        if op is None:
            return _answer(404, error=f"no operation {name!r}; known: {', '.join(sorted(OPS))}")
        try:
            params = await request.json()
        except ValueError:
            return _answer(400, error="the body must be a JSON object")
        if not isinstance(params, dict):
            return _answer(400, error="the body must be a JSON object")
        uid = peer_uid(request)
        loop = asyncio.get_running_loop()
        caller: Caller | None = None
        try:
            caller = await loop.run_in_executor(None, self.caller, uid, params.pop("acting_for", None))
            result = await loop.run_in_executor(None, op, self.service, caller, params)
        except Forbidden as e:
            log.warning("refused: %s", e)
            if not getattr(e, "recorded", False):  # the engine may have recorded it already
                await loop.run_in_executor(None, refused, self.service, caller or e.caller, name, e)
            return _answer(403, error=str(e))
        except BadRequest as e:
            return _answer(400, error=str(e))
        except LookupError as e:
            return _answer(404, error=e.args[0] if e.args else str(e))
        except Conflict as e:
            return _answer(409, error=str(e))
        except Exception as e:  # the engine's own errors (HoldError, QuerySyntaxError...) say what
            log.info("%s failed: %s: %s", name, type(e).__name__, e)
            return _answer(500, error=str(e), type=type(e).__name__)
        if isinstance(result, Stream):
            return await self._send(request, name, result)
        return _answer(200, result=result)

    async def _send(self, request: web.Request, name: str, stream: Stream) -> web.StreamResponse:
        """``stream``'s chunks, made on a thread of their own, at most _AHEAD ahead of the
        caller; a caller that goes away stops it. A failure before the first chunk is an
        ordinary 500 with its reason; after it, the connection is broken off (the caller's
        reader sees the stream end early)."""
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue = asyncio.Queue()
        room, gone = threading.Semaphore(_AHEAD), threading.Event()

        def hand(item) -> None:
            try:
                loop.call_soon_threadsafe(chunks.put_nowait, item)
            except RuntimeError:  # the loop has closed: the service is stopping
                gone.set()

        def pump() -> None:
            try:
                for chunk in stream.chunks:
                    while not room.acquire(timeout=1.0):
                        if gone.is_set():
                            return
                    if gone.is_set():
                        return
                    hand(chunk)
                hand(_END)
            except BaseException as e:  # a read failed: the caller must not take half for whole
                hand(e)
            finally:
                close = getattr(stream.chunks, "close", None)
                if close is not None:
                    close()
                stream.close()

        response = web.StreamResponse(headers={"Content-Type": stream.content_type})
        thread = threading.Thread(target=pump, name=f"stream-{name}", daemon=True)
        thread.start()
        try:
            first = await chunks.get()
            if isinstance(first, BaseException):  # nothing sent yet: the caller gets the reason
                log.info("%s failed: %s: %s", name, type(first).__name__, first)
                return _answer(500, error=str(first), type=type(first).__name__)
            await response.prepare(request)
            item = first
            while item is not _END:
                if isinstance(item, BaseException):
                    log.warning("%s: the stream failed: %s: %s", name, type(item).__name__, item)
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                room.release()
                await response.write(item)
                item = await chunks.get()
            await response.write_eof()
        finally:
            gone.set()
        return response
