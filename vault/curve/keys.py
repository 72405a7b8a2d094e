"""Key pairs and allow-lists, as files under the home.

``keys/curve/<component>.key`` holds a component's secret key (z85) and
``keys/curve/<component>.pub`` its public key (z85); like everything in the home, they are
the owner's alone (files 0600, directories 0700). A server's allow-list is a directory,
``keys/curve/trusted/<list>/<name>.pub``, one public key per client: ``dealers`` (who may
submit events to the broker's dealer port), ``workers`` (who may take jobs on its control and
work ports), ``collector`` (who may ask the collector for mail).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import zmq
from zmq.utils import z85

from vault.durable import write_file

KEY_DIR = Path("keys") / "curve"
COMPONENTS = ("broker", "collector", "dealer", "worker")
ALLOW_LISTS = {
    "dealers": "the broker's dealer port: dealers that may submit events",
    "workers": "the broker's control and work ports: workers that may take jobs",
    "collector": "the collector: clients (workers, reconcile, collector ask) that may read mail",
}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CurveError(Exception):
    """A key or allow-list problem, said in one line with what to do."""


def key_dir(home: Path | str) -> Path:
    return Path(home) / KEY_DIR


def fingerprint(public: bytes) -> str:
    """A short, stable name for a public key (z85 text or its 32 raw bytes) in logs."""
    raw = z85.decode(public) if len(public) == 40 else public
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


def parse_public(text: str | bytes) -> bytes:
    """A public key as z85 bytes (40 characters), or CurveError."""
    key = text.strip().encode("ascii", "replace") if isinstance(text, str) else text.strip()
    try:
        valid = len(key) == 40 and len(z85.decode(key)) == 32
    except (ValueError, TypeError, ZeroDivisionError):
        valid = False
    if not valid:
        raise CurveError(
            f"{key[:60].decode('ascii', 'replace')!r} is not a CURVE public key (40 z85 characters, as 'vaultctl keys init' prints)"
        )
    return key


def _component(component: str) -> str:
    if component not in COMPONENTS:
        raise CurveError(f"unknown component {component!r} (one of {', '.join(COMPONENTS)})")
    return component


def _list(name: str) -> str:
    if name not in ALLOW_LISTS:
        raise CurveError(f"unknown allow-list {name!r} (one of {', '.join(ALLOW_LISTS)})")
    return name


def _mkdirs(directory: Path) -> None:
    """``directory`` and the parents it lacks, each 0700 whatever the umask (the home's rule)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700, exist_ok=True)
        d.chmod(0o700)


def _write(path: Path, data: bytes, mode: int) -> None:
    """``data`` in ``path`` with ``mode`` from its first byte, replaced atomically."""
    _mkdirs(path.parent)
    write_file(path, data + b"\n", mode=mode)


def init_key(home: Path | str, component: str) -> tuple[bytes, bool]:
    """The component's public key, making its key pair first if it has none (then True)."""
    _component(component)
    pub = key_dir(home) / f"{component}.pub"
    sec = key_dir(home) / f"{component}.key"
    if sec.exists() and pub.exists():
        return parse_public(pub.read_bytes()), False
    public, secret = zmq.curve_keypair()
    _write(sec, secret, 0o600)  # the secret first: a .pub alone never names a usable pair
    _write(pub, public, 0o600)
    return public, True


def public_key(home: Path | str, component: str) -> bytes | None:
    """The component's public key in this home, or None."""
    try:
        return parse_public((key_dir(home) / f"{_component(component)}.pub").read_bytes())
    except FileNotFoundError:
        return None


def key_pair(home: Path | str, component: str) -> tuple[bytes, bytes]:
    """(public, secret) of the component, or CurveError saying how to make them."""
    d = key_dir(home)
    try:
        secret = (d / f"{_component(component)}.key").read_bytes().strip()
        public = parse_public((d / f"{component}.pub").read_bytes())
    except FileNotFoundError:
        raise CurveError(
            f"no CURVE key for the {component} in {d}: run 'vaultctl --home {home} keys init "
            f"{component}' (or 'keys init' alone: every key this home needs)"
        ) from None
    except PermissionError:
        raise CurveError(
            f"{d / f'{component}.key'}: permission denied (the key is its owner's alone)"
        ) from None
    if len(secret) != 40:
        raise CurveError(f"{d / f'{component}.key'} is not a CURVE secret key")
    if zmq.curve_public(secret) != public:
        raise CurveError(f"{d / f'{component}.pub'} is not the public key of {component}.key")
    return public, secret


SERVERS = ("broker", "collector")  # the servers a home's clients connect to


def set_server_key(home: Path | str, server: str, public: str | bytes) -> Path:
    """Record the public key of the ``server`` this home's clients connect to (on another host):
    ``keys/curve/servers/<server>.pub``."""
    if server not in SERVERS:
        raise CurveError(f"unknown server {server!r} (one of {', '.join(SERVERS)})")
    path = key_dir(home) / "servers" / f"{server}.pub"
    _write(path, parse_public(public), 0o600)
    return path


def server_key(home: Path | str, server: str) -> bytes | None:
    """The server's public key as this home knows it: recorded by :func:`set_server_key`, else
    the home's own key of that component (one host running both ends), else None."""
    try:
        return parse_public((key_dir(home) / "servers" / f"{server}.pub").read_bytes())
    except FileNotFoundError:
        return public_key(home, server)


def allow_list_dir(home: Path | str, name: str) -> Path:
    return key_dir(home) / "trusted" / _list(name)


def trust(home: Path | str, allow_list: str, name: str, public: str | bytes) -> Path:
    """Allow the client ``name`` with this public key on the server's ``allow_list`` (an
    existing name gets the new key). Takes effect when the server reloads (SIGHUP)."""
    if not NAME.match(name):
        raise CurveError(f"{name!r}: a client name is letters, digits, '.', '_' and '-' (at most 64)")
    key = parse_public(public)
    path = allow_list_dir(home, allow_list) / f"{name}.pub"
    _write(path, key, 0o600)
    return path


def revoke(home: Path | str, allow_list: str, name: str) -> Path:
    """Remove the client ``name`` from the allow-list (CurveError if it is not there)."""
    path = allow_list_dir(home, allow_list) / f"{name}.pub"
    if not NAME.match(name) or not path.exists():
        raise CurveError(f"{name!r} is not on the {allow_list} allow-list ({path.parent})")
    path.unlink()
    return path


def trusted(home: Path | str, allow_list: str) -> dict[str, bytes]:
    """The allow-list: client name -> public key (z85). Files that are not keys are skipped."""
    return read_allow_list(allow_list_dir(home, allow_list))


def read_allow_list(directory: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return out
    for file in names:
        if not file.endswith(".pub") or not NAME.match(file[:-4]):
            continue
        try:
            out[file[:-4]] = parse_public((directory / file).read_bytes())
        except (OSError, CurveError):
            continue
    return out


def inventory(home: Path | str) -> dict:
    """What ``vaultctl keys show`` lists: this home's key pairs and its allow-lists."""
    components = {}
    for component in COMPONENTS:
        public = public_key(home, component)
        if public is not None:
            components[component] = {"public_key": public.decode(), "fingerprint": fingerprint(public)}
    servers = {}
    for server in SERVERS:
        known = server_key(home, server)
        if known is not None:
            servers[server] = {"public_key": known.decode(), "fingerprint": fingerprint(known)}
    lists = {
        name: {
            client: {"public_key": key.decode(), "fingerprint": fingerprint(key)}
            for client, key in trusted(home, name).items()
        }
        for name in ALLOW_LISTS
    }
    return {"keys": components, "servers": servers, "trusted": lists}


HOME_KEYS = {  # [home] role -> the components a home of it may run
    "vault": COMPONENTS,  # all four: a one-host setup runs the dealer and collector from it too
    "mail-host": ("dealer", "collector"),
}
LOCAL = "local"  # the name a home's own client keys get on its own allow-lists


def init_home_keys(home: Path | str, role: str) -> dict[str, bytes]:
    """The key pairs a new home needs (component -> public key). A vault home trusts its own
    dealer and worker ("local"), so one host runs the whole pipeline over CURVE as it is; the
    keys of another host's dealer or worker are added with ``trust``."""
    made = {component: init_key(home, component)[0] for component in HOME_KEYS[role]}
    if "broker" in made:
        trust(home, "dealers", LOCAL, made["dealer"])
        trust(home, "workers", LOCAL, made["worker"])
        trust(home, "collector", LOCAL, made["worker"])
    return made
