"""A cosigning witness (C2SP tlog-witness, cosignature/v1): ``vaultctl witness serve DIR``.

It runs as a process of its own, under a user of its own, with a key the vault home never
holds. For each ledger (by origin) it keeps the newest checkpoint it cosigned, and cosigns a
new one only when the vault proves it extends that one (RFC 9162 consistency proof): so a
home whose ledger was rolled back, or rewritten and re-signed with the home's own key, gets
no cosignature, and verify (which asks the witness) finds out.

``DIR``, the witness's own directory (never inside a vault home):

  key             Ed25519 private key, PEM PKCS#8, 0600
  key.pub         its cosigner verifier key, ``<name>+<key id>+<base64(0x04 || key)>``: the
                  vault's ``[witness] cosigners`` names it
  logs/*.pub      verifier keys of the ledgers it witnesses (a vault's keys/ledger.ed25519.pub;
                  the key's name is the ledger's origin), added by ``vaultctl witness trust``
  state/<sha256(origin)>.note   the newest checkpoint cosigned for that origin, cosignature included
  refused/<time_ns>-<status>.req  each validly signed request refused as inconsistent with the
                  state: evidence that a log forked, was rolled back or was rewritten
  lock            one witness process per directory

Checking the old size and recording the new checkpoint happen with no await in between on
the one event-loop thread, so two submissions cannot interleave (the race C2SP describes).
Only this module and vault.witness.protocol run in the witness; they import nothing of the
vault but the checkpoint and Merkle formats.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from vault.durable import write_file
from vault.store.checkpoint import (
    COSIGNATURE_V1,
    CheckpointError,
    cosign,
    cosigner_key,
    load_or_create_key,
    parse_body,
    parse_verifier_key,
    split_note,
    verify_checkpoint_note,
)
from vault.store.merkle import verify_consistency
from vault.witness import protocol
from vault.witness.protocol import ProtocolError


class WitnessError(Exception):
    pass


@dataclass(frozen=True)
class Latest:
    size: int
    root: bytes
    note: bytes  # the checkpoint as cosigned, with the witness's cosignature line


def init_witness(directory: Path | str, name: str) -> str:
    """A new witness directory with a fresh key; its cosigner verifier key."""
    directory = Path(directory)
    if (directory / "key").exists():
        raise WitnessError(f"{directory / 'key'} exists: this is already a witness")
    if not name or any(c.isspace() or c == "+" for c in name):
        raise WitnessError(
            f"witness name {name!r}: no spaces or '+' (a schema-less URL, e.g. witness.example/w1)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for sub in ("logs", "state", "refused"):
        (directory / sub).mkdir(exist_ok=True)
    key = load_or_create_key(directory / "key", name, create=True, kind=COSIGNATURE_V1)
    return cosigner_key(name, key.public_key())


def trust(directory: Path | str, vkey: str) -> Path:
    """Witness the ledger this verifier key signs (its name is the ledger's origin)."""
    directory = Path(directory)
    if not (directory / "key").exists():
        raise WitnessError(f"{directory} is not a witness directory (run 'vaultctl witness init')")
    try:
        name, kid, _ = parse_verifier_key(vkey)
    except CheckpointError as e:
        raise WitnessError(str(e)) from None
    target = directory / "logs" / f"{re.sub(r'[^A-Za-z0-9._-]', '_', name)}-{kid.hex()}.pub"
    target.parent.mkdir(exist_ok=True)
    target.write_text(vkey.strip() + "\n")
    return target


class Witness:
    def __init__(self, directory: Path | str):
        self.dir = Path(directory)
        try:
            self.vkey = (self.dir / "key.pub").read_text().strip()
            self.name = self.vkey.split("+", 1)[0]
            self.key = load_or_create_key(self.dir / "key", self.name, create=False)
        except (OSError, CheckpointError) as e:
            raise WitnessError(
                f"{self.dir}: not a witness directory ({e}); run 'vaultctl witness init'"
            ) from None
        if cosigner_key(self.name, self.key.public_key()) != self.vkey:
            raise WitnessError(f"{self.dir / 'key.pub'} is not the public half of {self.dir / 'key'}")
        for sub in ("logs", "state", "refused"):
            (self.dir / sub).mkdir(exist_ok=True)
        self._lock_fd: int | None = None

    def lock(self) -> None:
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WitnessError(f"another witness process serves {self.dir}") from None
        self._lock_fd = fd

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------ state

    def trusted(self) -> dict[str, list[str]]:
        """origin -> verifier keys, read on every request: 'witness trust' needs no restart."""
        out: dict[str, list[str]] = {}
        for f in sorted((self.dir / "logs").glob("*.pub")):
            vkey = f.read_text().strip()
            out.setdefault(vkey.split("+", 1)[0], []).append(vkey)
        return out

    def _state_file(self, origin: str) -> Path:
        return self.dir / "state" / f"{hashlib.sha256(origin.encode()).hexdigest()}.note"

    def latest(self, origin: str) -> Latest | None:
        try:
            note = self._state_file(origin).read_bytes()
        except FileNotFoundError:
            return None
        text, _ = split_note(note)
        _, size, root = parse_body(text)
        return Latest(size, root, note)

    def _record(self, origin: str, note: bytes) -> None:
        write_file(self._state_file(origin), note)

    def _keep_refused(self, body: bytes, status: int) -> None:
        (self.dir / "refused" / f"{time.time_ns()}-{status}.req").write_bytes(body)

    def status(self) -> list[dict]:
        out = []
        for origin in sorted(self.trusted()):
            latest = self.latest(origin)
            out.append(
                {
                    "origin": origin,
                    "size": latest.size if latest else 0,
                    "root": latest.root.hex() if latest else None,
                }
            )
        return out

    # ------------------------------------------------------------ add-checkpoint

    def add_checkpoint(self, body: bytes) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) for one add-checkpoint request."""
        text_type = "text/plain"
        try:
            old, proof, note = protocol.parse_request(body)
            text, _ = split_note(note)
            origin, size, root = parse_body(text)
        except (ProtocolError, CheckpointError) as e:
            return protocol.BAD_REQUEST, text_type, f"{e}\n".encode()
        keys = self.trusted().get(origin)
        if not keys:
            return protocol.NOT_FOUND, text_type, f"unknown origin {origin!r}\n".encode()
        if not any(_signed_by(note, k) for k in keys):
            return protocol.FORBIDDEN, text_type, b"no signature by a trusted key for this origin\n"
        if old > size:
            return (
                protocol.BAD_REQUEST,
                text_type,
                f"old size {old} exceeds checkpoint size {size}\n".encode(),
            )
        latest = self.latest(origin)
        have = latest.size if latest else 0
        if old != have:
            return protocol.CONFLICT, protocol.SIZE_TYPE, protocol.size_body(have)
        if latest is None or old == 0:
            if proof:
                return protocol.BAD_REQUEST, text_type, b"the proof must be empty when the old size is 0\n"
        elif old == size:
            if root != latest.root:
                self._keep_refused(body, protocol.CONFLICT)
                return protocol.CONFLICT, protocol.SIZE_TYPE, protocol.size_body(have)
        elif not verify_consistency(old, size, proof, latest.root, root):
            self._keep_refused(body, protocol.UNPROCESSABLE)
            return (
                protocol.UNPROCESSABLE,
                text_type,
                f"checkpoint {size} is not consistent with the checkpoint {old} cosigned before\n".encode(),
            )
        line = cosign(note, self.key, self.name, int(time.time()))
        self._record(origin, note + line.encode())
        return protocol.OK, text_type, line.encode()


def _signed_by(note: bytes, vkey: str) -> bool:
    try:
        verify_checkpoint_note(note, vkey)
        return True
    except CheckpointError:
        return False


# ---------------------------------------------------------------- serving


def parse_listen(listen: str) -> tuple[str, str | int]:
    """``unix:PATH`` -> ("unix", path); ``HOST:PORT`` or ``http://HOST:PORT`` -> (host, port)."""
    if listen.startswith("unix:"):
        return "unix", listen[len("unix:") :]
    hostport = listen.removeprefix("http://").rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise WitnessError(f"--listen {listen!r}: unix:PATH or HOST:PORT")
    return host or "127.0.0.1", int(port)


def serve(witness: Witness, listen: str, ready=None) -> None:
    """Answer add-checkpoint on ``listen`` until SIGTERM or SIGINT."""
    kind, where = parse_listen(listen)
    witness.lock()

    async def add(request: web.Request) -> web.Response:
        status, ctype, out = witness.add_checkpoint(await request.read())
        return web.Response(status=status, body=out, content_type=ctype)

    async def main() -> None:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post(protocol.PATH, add)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site: web.BaseSite
        if kind == "unix":
            path = Path(str(where))
            if path.is_socket():
                path.unlink()  # a stale socket: the lock is ours
            site = web.UnixSite(runner, str(path))
        else:
            site = web.TCPSite(runner, str(kind), int(where))
        await site.start()
        if kind == "unix":
            # the protocol needs no caller authentication: only the checkpoint's signature counts
            os.chmod(str(where), 0o666)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready()
        await stop.wait()
        await runner.cleanup()
        if kind == "unix":
            Path(str(where)).unlink(missing_ok=True)

    try:
        asyncio.run(main())
    finally:
        witness.close()
