"""Talking to the vault service: HTTP/1.1 over its unix socket (``[service] socket_path``),
JSON in and out. The service learns who calls from the socket itself (SO_PEERCRED), so the
request carries no identity. Standard library only: a command that finds no service pays
one failed connect, nothing more.

Answers: ``200 {"result": ...}``; ``403 {"error": ...}`` (refused: the caller's roles do not
allow it, and the refusal is in the audit trail); ``400`` (bad request); ``500`` (it failed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from vault.config import Config


class ServiceUnavailable(Exception):
    """No service answers on the socket: the caller opens the home itself."""


class ServiceError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ServiceRefused(ServiceError):
    """403: the caller may not do this."""


DEFAULT_SHARED_SOCKET = "/run/vault/vault.sock"


def socket_path(config: Config) -> Path:
    return config.path("service", "socket_path")


class ServiceClient:
    def __init__(self, path: Path | str, timeout: float | None = None):
        self.path = Path(path)
        self.timeout = timeout  # None: long operations (an import) take as long as they take

    @classmethod
    def from_config(cls, config: Config) -> ServiceClient:
        return cls(socket_path(config))

    def running(self) -> bool:
        try:
            self.call("ping", {}, timeout=5.0)
            return True
        except ServiceUnavailable:
            return False

    def _request(self, op: str, params: dict, timeout: float | None):
        if not self.path.exists():
            raise ServiceUnavailable(f"no vault service socket at {self.path}")
        from vault.unixhttp import UnixHTTPConnection  # http.client: only when there is a service

        conn = UnixHTTPConnection(
            self.path, timeout if timeout is not None else self.timeout, "vault-service"
        )
        body = json.dumps(params).encode()
        try:
            conn.request("POST", f"/v1/op/{op}", body, {"Content-Type": "application/json"})
            return conn, conn.getresponse()
        except (ConnectionRefusedError, FileNotFoundError) as e:
            conn.close()
            raise ServiceUnavailable(f"no vault service at {self.path}: {e.strerror or e}") from None
        except OSError as e:
            conn.close()
            raise ServiceError(0, f"vault service at {self.path}: {e}") from None

    def _answer(self, response, raw: bytes) -> Any:
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            raise ServiceError(response.status, f"vault service answered {raw[:200]!r}") from None
        if response.status == 200:
            return answer.get("result")
        message = answer.get("error") or f"HTTP {response.status}"
        if response.status == 403:
            raise ServiceRefused(403, message)
        raise ServiceError(response.status, message)

    def call(self, op: str, params: dict, *, timeout: float | None = None) -> Any:
        """Run operation ``op`` in the service; its result, or ServiceRefused / ServiceError."""
        conn, response = self._request(op, params, timeout)
        try:
            raw = response.read()
        except OSError as e:
            raise ServiceError(0, f"vault service at {self.path}: {e}") from None
        finally:
            conn.close()
        return self._answer(response, raw)

    @contextmanager
    def stream(self, op: str, params: dict, *, timeout: float | None = None) -> Iterator[BinaryIO]:
        """Run streaming operation ``op`` (restore, export); yields its body to read as it
        arrives. A refusal or failure is raised before anything is yielded."""
        conn, response = self._request(op, params, timeout)
        try:
            if response.status != 200 or response.getheader("Content-Type", "").startswith(
                "application/json"
            ):
                self._answer(response, response.read())
                raise ServiceError(response.status, f"vault service sent no stream for {op}")
            yield response
        finally:
            conn.close()


def service_client(config: Config) -> ServiceClient | None:
    """A client of the running service, or None when none answers."""
    client = ServiceClient.from_config(config)
    return client if client.running() else None
