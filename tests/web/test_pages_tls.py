"""The pages over HTTPS (``[web] tls_cert``, ``tls_key``): a real ``vaultctl serve`` with a
self-signed certificate made here, a login against the real slapd. Over TLS the session
cookie is ``__Host-vault`` with Secure (the browser keeps it to HTTPS and this host), and
answers carry HSTS."""

from __future__ import annotations

import http.client
import ssl
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.web.site import PASSWORDS, csrf_of, vaultctl
from vault.testing.serve import edit_config, start_service

pytestmark = pytest.mark.slapd


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "web.pem", directory / "web.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def test_over_tls_the_session_cookie_is_host_only_and_secure(tmp_path, slapd_server):
    if not slapd_server.admin().search(slapd_server.people, "(uid=wdora)"):
        slapd_server.add_user("wdora", "Dora Web", ["wdora@example.org"], userPassword=PASSWORDS["wdora"])
    home = tmp_path / "home"
    vaultctl(home, "init")
    cert, key = self_signed(tmp_path)
    edit_config(
        home,
        web={"tls_cert": str(cert), "tls_key": str(key)},
        ldap={
            "url": slapd_server.url,
            "base_dn": slapd_server.suffix,
            "bind_dn": slapd_server.admin_dn,
            "bind_password": slapd_server.admin_password,
        },
    )
    served = start_service(home, web=True)
    port = served.port
    context = ssl.create_default_context(cafile=str(cert))

    def request(method: str, path: str, body: dict | None = None, cookie: str = ""):
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=60, context=context)
        headers = {"Connection": "close", "Cookie": cookie}
        data = None
        if body is not None:
            data = urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"https://127.0.0.1:{port}"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    try:
        status, headers, body = request("GET", "/login")
        assert status == 200
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        login_cookie = next(c for c in headers.get_all("Set-Cookie") if c.startswith("vault-login="))
        assert "Secure" in login_cookie and "HttpOnly" in login_cookie
        form = {"login": "wdora", "password": PASSWORDS["wdora"], "csrf": csrf_of(body), "next": "/"}
        status, headers, _ = request("POST", "/login", form, cookie=login_cookie.split(";", 1)[0])
        assert status == 303
        session = next(c for c in headers.get_all("Set-Cookie") if c.startswith("__Host-vault="))
        assert all(flag in session for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"))
        assert "Domain" not in session
        status, _, body = request("GET", "/", cookie=session.split(";", 1)[0])
        assert status == 200 and b"wdora" in body
    finally:
        served.close()
