"""The vault's side of one cosigning witness: submit a checkpoint (C2SP add-checkpoint) over
HTTP, on a unix socket (``unix:/run/vault-witness/witness.sock``) or TCP
(``http://192.0.2.30:7380``, a prefix path allowed)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from vault.store.checkpoint import CheckpointError, parse_verifier_key
from vault.witness import protocol


class Unreachable(Exception):
    """The witness could not be asked (down, refused the connection, timed out)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str


class Cosigner:
    def __init__(self, url: str, vkey: str, timeout: float):
        self.url = url
        self.vkey = vkey.strip()
        try:
            self.name, kid, _ = parse_verifier_key(self.vkey, b"\x04")
        except CheckpointError as e:
            raise ValueError(f"witness {url}: {e}") from None
        self.key_id = kid.hex()
        self.timeout = timeout
        if url.startswith("unix:"):
            self._socket, self._prefix = url[len("unix:") :], ""
            self._host, self._port = "", 0
        else:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"witness URL {url!r}: unix:PATH or http://HOST:PORT[/prefix]")
            self._socket, self._prefix = "", parts.path.rstrip("/")
            self._host, self._port = parts.hostname, parts.port or 80

    @classmethod
    def parse(cls, spec: str, timeout: float) -> Cosigner:
        """``"<url> <verifier key>"``, as ``[witness] cosigners`` lists them."""
        url, _, vkey = spec.strip().partition(" ")
        if not vkey.strip():
            raise ValueError(f"[witness] cosigners entry {spec!r}: expected '<url> <verifier key>'")
        return cls(url, vkey, timeout)

    def __str__(self) -> str:
        return f"witness {self.name} ({self.url})"

    def add_checkpoint(self, old: int, proof: list[bytes], note: bytes) -> Answer:
        import http.client  # ~25 ms with ssl: only a vault that has a cosigner pays for it

        from vault.unixhttp import UnixHTTPConnection

        body = protocol.request_body(old, proof, note)
        conn: http.client.HTTPConnection
        if self._socket:
            conn = UnixHTTPConnection(self._socket, self.timeout, "witness")
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            conn.request("POST", self._prefix + protocol.PATH, body, {"Content-Type": "text/plain"})
            response = conn.getresponse()
            return Answer(response.status, response.read(), response.getheader("Content-Type", ""))
        except (OSError, http.client.HTTPException) as e:
            raise Unreachable(f"{self}: {e}") from None
        finally:
            conn.close()
