"""What alerts are sent to, started by the tests on 127.0.0.1: a webhook receiver and an SMTP
server (aiosmtpd, STARTTLS with a certificate made here, AUTH required).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Webhook:
    """Records every POST; answers 500 to the next ``fail`` ones (of rule ``fail_rule`` only,
    when set), hangs on the next ``hang``.
    """

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    fail: int = 0
    fail_rule: str | None = None
    hang: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, body: dict[str, Any]) -> tuple[int, float]:
        """The status to answer this request with, and how long to wait first."""
        with self.lock:
            if self.hang:
                self.hang -= 1
                return 200, 5.0
            if self.fail and self.fail_rule in (None, body["rule"]["name"]):
                self.fail -= 1
                return 500, 0.0
        return 200, 0.0

    def events(self) -> list[tuple[str, str, str]]:
        """(rule, event, subject) of each accepted alert, in order."""
        return [(b["rule"]["name"], b["event"], b["subject"]) for b in self.received]


@contextlib.contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, wait = hook.take(body)
            time.sleep(wait)
            (hook.received if status == 200 else hook.failed).append(body)
            with contextlib.suppress(OSError):
                self.send_response(status)
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook.url = f"http://127.0.0.1:{server.server_port}/hooks/tracer"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, written to ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    port: int = 0
    cert: Path = Path()
    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def smtp_server(folder: Path, user: str, password: str) -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 that requires STARTTLS, then AUTH as ``user``."""
    import ssl

    cert, key = self_signed(folder)
    box = Mailbox(cert=cert)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(message_from_bytes(envelope.content))
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = data.login.decode() == user and data.password.decode() == password
        if ok:
            box.logins.append(data.login.decode())
        return AuthResult(success=ok)

    box.port = _free_port()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=box.port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
