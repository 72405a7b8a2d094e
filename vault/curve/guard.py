"""CURVE on a socket, or plain where the config says so and the endpoint is local.

Servers (:func:`secure_server`) get their component's secret key and a ZAP domain named after
their allow-list; one authenticator per ZeroMQ context (pyzmq's ThreadAuthenticator) answers
for every domain from its allow-list directory (keys.py), logs each refused client (its
address and its key's fingerprint) and re-reads the directories on :func:`reload` (SIGHUP).
A client without CURVE never reaches ZAP (the handshake fails on the mechanism): the socket's
monitor logs it. Clients (:func:`secure_client`) get their component's key pair and the
server's public key.

Plain TCP only where both hold: the endpoint is loopback or ipc, and the link's section says
``allow_plaintext = true``; anything else without keys is a CurveError saying what to do.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from vault.curve.keys import (
    CurveError,
    allow_list_dir,
    fingerprint,
    key_pair,
    parse_public,
    read_allow_list,
    server_key,
)

log = logging.getLogger("vault.curve")

LOG_EVERY = 60.0  # seconds: the same refusal is logged once per this, with a count
MAX_KINDS = 10000  # refusals remembered for that (then forgotten)
BUDGET = 60  # refusal lines per LOG_EVERY at most


class _Limiter:
    """The same refusal once per LOG_EVERY seconds, with how many were left out since; and
    at most BUDGET lines of any refusal per LOG_EVERY (a flood of fresh keys is one line a
    second, not one a connection)."""

    def __init__(self) -> None:
        self._last: dict[tuple, tuple[float, int]] = {}
        self._window, self._spent, self._dropped = float("-inf"), 0, 0
        self._lock = threading.Lock()

    def due(self, key: tuple) -> int | None:
        now = time.monotonic()
        with self._lock:
            if len(self._last) > MAX_KINDS:
                self._last.clear()
            last, skipped = self._last.get(key, (float("-inf"), 0))
            if now - last < LOG_EVERY:
                self._last[key] = (last, skipped + 1)
                return None
            if now - self._window >= LOG_EVERY:
                self._window, self._spent = now, 0
            if self._spent >= BUDGET:
                self._dropped += 1
                return None
            self._spent += 1
            self._last[key] = (now, 0)
            dropped, self._dropped = self._dropped, 0
            return skipped + dropped


_limit = _Limiter()


def _say(key: tuple, message: str, *args) -> None:
    skipped = _limit.due(key)
    if skipped is not None:
        log.warning(message + (f" ({skipped} more refusals left out since)" if skipped else ""), *args)


class _Authenticator(ThreadAuthenticator):
    """ZAP for one context: domain (allow-list name) -> directory and its keys."""

    def __init__(self, context: zmq.Context):
        super().__init__(context, log=logging.getLogger("vault.curve.zap"))
        self.lists: dict[str, tuple[Path, dict[bytes, str]]] = {}
        self._address = "?"
        self._names: dict[bytes, str] = {}

    def watch(self, domain: str, directory: Path) -> None:
        self.lists[domain] = (directory, _by_key(directory))

    def reload(self) -> dict[str, int]:
        counts = {}
        for domain, (directory, old) in list(self.lists.items()):
            new = _by_key(directory)
            self.lists[domain] = (directory, new)
            counts[domain] = len(new)
            added = sorted(set(new.values()) - set(old.values()))
            removed = sorted(set(old.values()) - set(new.values()))
            log.info(
                "CURVE allow-list %s reloaded: %d key(s)%s%s",
                domain,
                len(new),
                f", added {', '.join(added)}" if added else "",
                f", removed {', '.join(removed)}" if removed else "",
            )
        return counts

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        self._address = msg[3].decode("utf-8", "replace") if len(msg) > 3 else "?"
        await super().handle_zap_message(msg)

    async def _authenticate_curve(self, domain: str, client_key: bytes) -> tuple[bool, bytes]:
        text = z85.encode(client_key)
        directory, keys = self.lists.get(domain, (None, {}))
        name = keys.get(text)
        if name is not None:
            self._names[client_key] = f"{domain}/{name}"
            return True, b"OK"
        _say(
            ("zap", domain, self._address, text),
            "CURVE: refused %s on %s: key %s is not on the allow-list (%s)",
            self._address,
            domain,
            fingerprint(text),
            directory or "no allow-list for this port",
        )
        return False, b"key not allowed"

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self._names.get(client_public_key) or super().curve_user_id(client_public_key)


def _by_key(directory: Path) -> dict[bytes, str]:
    return {key: name for name, key in read_allow_list(directory).items()}


_guards: dict[int, tuple[zmq.Context, _Authenticator]] = {}
_lock = threading.Lock()


def _authenticator(context: zmq.Context) -> _Authenticator:
    with _lock:
        held = _guards.get(id(context))
        if held is None or held[0] is not context:
            auth = _Authenticator(context)
            auth.start()
            _guards[id(context)] = (context, auth)
            return auth
        return held[1]


def reload() -> dict[str, int]:
    """Re-read every allow-list of every server in this process (SIGHUP): domain -> keys.
    New connections are checked against the new lists; clients already connected stay until
    they reconnect, unless their server also checks each message (:func:`allowed`)."""
    counts: dict[str, int] = {}
    with _lock:
        auths = [auth for _, auth in _guards.values()]
    for auth in auths:
        counts.update(auth.reload())
    return counts


def allowed(user_id: str | None) -> bool:
    """Whether a message's ZAP User-Id (``<list>/<name>``) is still on its allow-list: a
    revoked client's open connection is cut off at its next message."""
    if not user_id or "/" not in user_id:
        return False
    domain, name = user_id.split("/", 1)
    with _lock:
        auths = [auth for _, auth in _guards.values()]
    return any(name in auth.lists.get(domain, (None, {}))[1].values() for auth in auths)


def recv_allowed(sock: zmq.Socket, curve: ServerCurve | None, flags: int = 0) -> list[bytes] | None:
    """The next message on a server socket, or None (logged) when its sender's key has been
    revoked since it connected: ZAP checks a key at the handshake only."""
    first = sock.recv(flags, copy=False)
    frames = [first.bytes]
    while sock.getsockopt(zmq.RCVMORE):
        frames.append(sock.recv())
    if curve is None:
        return frames
    user = str(first.get("User-Id") or "")
    if allowed(user):
        return frames
    _say(
        ("revoked", curve.domain, user),
        "CURVE: ignored a message on %s from %s: no longer allowed",
        curve.label,
        user,
    )
    return None


# ------------------------------------------------------------ the plaintext policy


def local_endpoint(endpoint: str) -> bool:
    """ipc:// and inproc://, or tcp:// to a loopback address (127.0.0.0/8, ::1, localhost)."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rsplit(":", 1)[0].strip("[]")
    if ";" in host:  # tcp://source;dest:port: the destination counts
        host = host.split(";", 1)[1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plaintext(config, section: str, endpoint: str) -> bool:
    """Whether this link runs without CURVE: only when ``[section] allow_plaintext`` says so,
    and then only on a local endpoint."""
    if not config[section].get("allow_plaintext"):
        return False
    if not local_endpoint(endpoint):
        raise CurveError(
            f"{endpoint}: [{section}] allow_plaintext = true, but plain ZeroMQ is allowed on loopback "
            "and ipc endpoints only: remove allow_plaintext and set up CURVE keys (vaultctl keys init; "
            "README, deployment)"
        )
    return True


def _refuse_plain(section: str, endpoint: str, why: str) -> CurveError:
    local = local_endpoint(endpoint)
    return CurveError(
        f"{endpoint}: {why}; without CURVE this link is refused"
        + (f" (or, this endpoint being local, set [{section}] allow_plaintext = true)" if local else "")
    )


@dataclass(frozen=True)
class ServerCurve:
    """A server socket's CURVE: its key pair and the allow-list its clients are checked against."""

    public: bytes
    secret: bytes
    domain: str
    allow_list: Path
    label: str

    def apply(self, sock: zmq.Socket) -> None:
        """Before ``bind``."""
        _authenticator(sock.context).watch(self.domain, self.allow_list)
        sock.setsockopt(zmq.ZAP_DOMAIN, self.domain.encode())
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        _monitor(sock, self.label, server=True)


@dataclass(frozen=True)
class ClientCurve:
    """A client socket's CURVE: its key pair and the server's public key."""

    public: bytes
    secret: bytes
    server_key: bytes
    label: str

    def apply(self, sock: zmq.Socket) -> None:
        """Before ``connect``."""
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        _monitor(sock, self.label, server=False)


def server_curve(config, *, section: str, endpoint: str, domain: str, component: str) -> ServerCurve | None:
    """How a server of this home binds ``endpoint``: CURVE with the component's key, clients
    checked against the home's ``domain`` allow-list; None where the link is plain; CurveError
    (saying what to do) where it can be neither."""
    if plaintext(config, section, endpoint):
        return None
    directory = allow_list_dir(config.home, domain)
    try:
        public, secret = key_pair(config.home, component)
    except CurveError as e:
        raise _refuse_plain(section, endpoint, str(e)) from None
    return ServerCurve(public, secret, domain, directory, f"{domain} ({endpoint})")


def server_public_key(config, section: str, server: str) -> bytes | None:
    """``[section] server_key``, or the key ``vaultctl keys server`` recorded in this home, or
    the home's own key of the server (a one-host setup)."""
    configured = config[section].get("server_key", "")
    if configured:
        return parse_public(configured)
    return server_key(config.home, server)


def client_curve(config, *, section: str, endpoint: str, component: str, server: str) -> ClientCurve | None:
    """How a client of this home connects to ``endpoint``: CURVE with the component's key
    pair and the server's public key (``[section] server_key``, or the home's copy); None
    where the link is plain; CurveError where it can be neither."""
    if plaintext(config, section, endpoint):
        return None
    try:
        public, secret = key_pair(config.home, component)
    except CurveError as e:
        raise _refuse_plain(section, endpoint, str(e)) from None
    server_key = server_public_key(config, section, server)
    if server_key is None:
        raise _refuse_plain(
            section,
            endpoint,
            f"no public key for the {server}: run 'vaultctl keys server {server} KEY' with the key "
            f"'vaultctl keys show' prints on the {server}'s host",
        )
    # both fingerprints: a failed handshake's log says which server key this client offered
    label = f"the {server} at {endpoint} (key {fingerprint(server_key)}) as {component} {fingerprint(public)}"
    return ClientCurve(public, secret, server_key, label)


def secure(sock: zmq.Socket, curve: ServerCurve | ClientCurve | None) -> zmq.Socket:
    """``sock`` with ``curve`` applied (None: plain, as the config allowed)."""
    if curve is not None:
        curve.apply(sock)
    return sock


# ------------------------------------------------------------ handshake failures

_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


def _why(event: int, value: int, server: bool) -> str:
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return "the server refused our key (ask its admin to 'vaultctl keys trust' it)" if not server else ""
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return "a client without CURVE" if server else "the server does not speak CURVE"
        if value in (
            zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC,
            zmq.PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO,
            zmq.PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_INITIATE,
        ):
            return "a CURVE handshake that does not decrypt (the wrong server key)"
        return f"a ZMTP protocol error ({value:#x})"
    if server:
        return "a client that broke off the handshake (without CURVE, or with the wrong server key)"
    return "the handshake broke off (the wrong server key, or not a CURVE server)"


def _monitor(sock: zmq.Socket, what: str, *, server: bool) -> None:
    """Log each failed handshake on ``sock`` (a thread reading its monitor socket)."""
    monitor = sock.get_monitor_socket(_FAILED | zmq.EVENT_MONITOR_STOPPED)

    def run() -> None:
        from zmq.utils.monitor import recv_monitor_message

        try:
            while True:
                try:
                    event = recv_monitor_message(monitor)
                except zmq.ZMQError:
                    return
                if event["event"] == zmq.EVENT_MONITOR_STOPPED:
                    return
                why = _why(event["event"], event["value"], server)
                if why:
                    side = "refused a client on" if server else "not connected to"
                    _say(("monitor", what, why), "CURVE: %s %s: %s", side, what, why)
        finally:
            monitor.close(0)

    threading.Thread(target=run, name="curve-monitor", daemon=True).start()
