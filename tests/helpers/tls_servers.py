"""Real TLS test servers on 127.0.0.1, CAs from trustme, and a real proxy.py CONNECT proxy.

Other tests use these too:

    from tests.helpers.tls_servers import TestPKI, https_file_server
    pki = TestPKI()                       # a CA; pki.ca_path is its PEM file
    with https_file_server(root_dir, pki) as srv:
        srv.url                           # "https://127.0.0.1:PORT/"
        srv.requests                      # [RequestRecord(method, path, headers), ...]

``HTTPSServer(handler, cert=..., ...)`` serves any behaviour (a function of the request);
``sequence([...])`` makes 503-then-200 style behaviours; ``proxy_py(...)`` starts proxy.py.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

HOST = "127.0.0.1"


# --- certificates --------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class TestPKI:
    """A trustme CA with its PEM written to a folder, and helpers to issue server certs."""

    __test__ = False

    def __init__(self, folder: Path | None = None, name: str = "ca") -> None:
        self.ca = trustme.CA()
        self.folder = folder or Path(tempfile.mkdtemp(prefix="inst-pki-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca_path = self.folder / f"{name}.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.name = name

    def leaf(self, *names: str, not_before: datetime.datetime | None = None,
             not_after: datetime.datetime | None = None) -> trustme.LeafCert:
        """A server certificate signed by this CA (default names: 127.0.0.1, localhost)."""
        return self.ca.issue_cert(*(names or (HOST, "localhost")), not_before=not_before,
                                  not_after=not_after)

    def expired(self) -> trustme.LeafCert:
        """Valid from 30 days ago until yesterday."""
        return self.leaf(not_before=_now() - datetime.timedelta(days=30),
                         not_after=_now() - datetime.timedelta(days=1))

    def not_yet_valid(self) -> trustme.LeafCert:
        """Valid from 10 days from now."""
        return self.leaf(not_before=_now() + datetime.timedelta(days=10),
                         not_after=_now() + datetime.timedelta(days=40))

    def with_intermediate(self) -> trustme.LeafCert:
        """Signed by an intermediate CA; the server sends leaf + intermediate."""
        return self.ca.create_child_ca().issue_cert(HOST, "localhost")

    def client_cert_file(self, name: str = "client") -> Path:
        """A PEM file with a client certificate (signed by this CA) and its key."""
        path = self.folder / f"{name}.pem"
        self.ca.issue_cert("client@example.test").private_key_and_cert_chain_pem.write_to_path(
            str(path))
        return path

    def system_store(self, *extra: Path) -> Path:
        """A hashed cert folder (for SSL_CERT_DIR) with this CA and *extra* PEM files."""
        store = self.folder / f"store-{self.name}"
        store.mkdir(exist_ok=True)
        for i, pem in enumerate((self.ca_path, *extra)):
            shutil.copy(pem, store / f"ca{i}.pem")
        subprocess.run(["openssl", "rehash", str(store)], check=True, capture_output=True)
        return store


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost: (cert pem, key pem)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed.test")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=1))
        .not_valid_after(_now() + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]),
            critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "self-signed.pem", folder / "self-signed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(cert: trustme.LeafCert | tuple[Path, Path],
                   client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    """A server-side context for *cert*; with *client_ca*, a client certificate is required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if isinstance(cert, tuple):
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    else:
        cert.configure_cert(ctx)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(ctx)
    return ctx


# --- servers -------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """One request the server saw."""

    method: str
    path: str
    headers: dict[str, str]
    time: float = field(default_factory=time.monotonic)


class Handler(http.server.BaseHTTPRequestHandler):
    """Dispatches every request to ``server.behaviour(handler)``."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each response waits ~40 ms
    # for the client's delayed ACK, which made server-backed tests slow.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        self.server.requests.append(RequestRecord(self.command, self.path, dict(self.headers)))
        self.server.behaviour(self)

    do_GET = do_HEAD = do_POST = _dispatch

    # helpers for behaviours
    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
              ) -> None:
        """Send a complete answer."""
        self.send_response(status)
        hdrs = {"Content-Length": str(len(body)), **(headers or {})}
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reset(self) -> None:
        """Abort the connection with a TCP RST and no answer."""
        import struct

        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        raw = self.connection
        if isinstance(raw, ssl.SSLSocket):
            with contextlib.suppress(OSError):
                raw = raw.unwrap()  # type: ignore[assignment]
        with contextlib.suppress(OSError):
            raw.close()


Behaviour = Callable[[Handler], None]


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, behaviour: Behaviour, ctx: ssl.SSLContext | None) -> None:
        self.behaviour = behaviour
        self.ctx = ctx
        self.requests: list[RequestRecord] = []
        self.handshake_errors: list[str] = []
        super().__init__((HOST, 0), Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ctx is not None:
            request.settimeout(10)
            tls = self.ctx.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                self.handshake_errors.append(str(exc))
                _drain_and_close(tls)
                return
            request = tls
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _drain_and_close(sock: ssl.SSLSocket) -> None:
    """Close politely after a failed handshake so the alert reaches the client (no RST)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(2)
        while sock.recv(4096):
            pass
    with contextlib.suppress(OSError):
        sock.close()


class HTTPSServer:
    """A threaded server on 127.0.0.1:0; plain HTTP when *ctx* is None. Use as a context."""

    def __init__(self, behaviour: Behaviour, ctx: ssl.SSLContext | None,
                 host_name: str = HOST) -> None:
        self._server = _Server(behaviour, ctx)
        self.port = self._server.server_address[1]
        scheme = "https" if ctx is not None else "http"
        self.url = f"{scheme}://{host_name}:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request seen so far."""
        return self._server.requests

    @property
    def handshake_errors(self) -> list[str]:
        """TLS handshakes that failed on the server side."""
        return self._server.handshake_errors

    def set_behaviour(self, behaviour: Behaviour) -> None:
        """Change what the server does for the next requests."""
        self._server.behaviour = behaviour

    def __enter__(self) -> HTTPSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def ok_behaviour(body: bytes = b"hello\n") -> Behaviour:
    """Always 200 with *body*."""
    return lambda h: h.reply(200, body, {"Content-Type": "text/plain"})


def sequence(steps: Sequence[Behaviour | int], then: Behaviour | None = None) -> Behaviour:
    """Behave as steps[0] for the first request, steps[1] for the second, ...; an int step is a
    bare status. After the steps, *then* (default: 200 "ok")."""
    lock = threading.Lock()
    state = {"i": 0}
    final = then or ok_behaviour(b"ok")

    def run(h: Handler) -> None:
        with lock:
            i = state["i"]
            state["i"] += 1
        step = steps[i] if i < len(steps) else final
        if isinstance(step, int):
            h.reply(step, b"")
        else:
            step(h)

    return run


def status(code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Behaviour:
    """A fixed status with headers."""
    return lambda h: h.reply(code, body, headers)


def stall(seconds: float, after: Behaviour | None = None) -> Behaviour:
    """Sleep before answering (to trip a read timeout)."""

    def run(h: Handler) -> None:
        time.sleep(seconds)
        with contextlib.suppress(OSError):
            (after or ok_behaviour())(h)

    return run


def reset(h: Handler) -> None:
    """Abort the connection without answering."""
    h.reset()


def file_behaviour(root: Path) -> Behaviour:
    """Serve files under *root* (GET/HEAD, single Range, ETag), 404 otherwise."""

    def run(h: Handler) -> None:
        rel = h.path.split("?", 1)[0].lstrip("/")
        from urllib.parse import unquote

        path = (root / unquote(rel)).resolve()
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file() or root.resolve() not in path.parents:
            h.reply(404, b"not found")
            return
        data = path.read_bytes()
        ctype = "text/html" if path.suffix == ".html" else (
            "application/vnd.pypi.simple.v1+json" if path.suffix == ".json"
            else "application/octet-stream")
        headers = {"Content-Type": ctype, "Accept-Ranges": "bytes",
                   "ETag": f'"{len(data)}-{int(path.stat().st_mtime)}"'}
        reply_with_range(h, data, headers)

    return run


def reply_with_range(h: Handler, data: bytes, headers: dict[str, str],
                     ranges: bool = True) -> None:
    """200 with *data*, or 206/416 for a single ``Range: bytes=`` request when *ranges*."""
    rng = h.headers.get("Range")
    if ranges and rng and rng.startswith("bytes="):
        start, end = _parse_range(rng[6:], len(data))
        if start is None:
            h.reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            return
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        h.reply(206, data[start:end + 1], headers)
        return
    h.reply(200, data, headers)


def _parse_range(spec: str, size: int) -> tuple[int | None, int]:
    first, _, last = spec.split(",")[0].strip().partition("-")
    if not first:
        n = int(last)
        return (max(0, size - n), size - 1) if n > 0 else (None, 0)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if start < size and start <= end else (None, 0)


@contextlib.contextmanager
def https_file_server(root: Path, pki: TestPKI, *, host_name: str = HOST
                      ) -> Iterator[HTTPSServer]:
    """Serve *root* over HTTPS with a cert from *pki*; ``.url`` ends with "/"."""
    with HTTPSServer(file_behaviour(root), server_context(pki.leaf()), host_name) as srv:
        yield srv


# --- proxy.py ------------------------------------------------------------------------------


@dataclass
class Proxy:
    """A running proxy.py; ``url`` is ``http://127.0.0.1:PORT``."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    ca: TestPKI | None = None


@contextlib.contextmanager
def proxy_py(folder: Path, *, intercept_ca: TestPKI | None = None,
             upstream_ca: Path | None = None) -> Iterator[Proxy]:
    """Run proxy.py on loopback. With *intercept_ca*, it re-signs HTTPS with that CA and
    verifies origins with *upstream_ca*."""
    folder.mkdir(parents=True, exist_ok=True)
    port_file = folder / "port"
    log = folder / "proxy.log"
    args = [sys.executable, "-m", "proxy", "--hostname", HOST, "--port", "0",
            "--port-file", str(port_file), "--num-workers", "1", "--num-acceptors", "1",
            "--log-level", "WARNING", "--log-file", str(log), "--data-dir", str(folder / "data")]
    if intercept_ca is not None:
        signing = folder / "signing.key"
        subprocess.run(["openssl", "genrsa", "-out", str(signing), "2048"], check=True,
                       capture_output=True)
        key = folder / "proxy-ca.key"
        intercept_ca.ca.private_key_pem.write_to_path(str(key))
        certdir = folder / "certs"
        certdir.mkdir(exist_ok=True)
        args += ["--ca-key-file", str(key), "--ca-cert-file", str(intercept_ca.ca_path),
                 "--ca-signing-key-file", str(signing), "--ca-cert-dir", str(certdir)]
        if upstream_ca is not None:
            args += ["--ca-file", str(upstream_ca)]
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = _wait_port(port_file, proc)
        yield Proxy(f"http://{HOST}:{port}", port, proc, log, intercept_ca)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_port(port_file: Path, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy.py exited with {proc.returncode}")
        if port_file.exists():
            text = port_file.read_text().strip()
            if text:
                port = int(text.split()[0])
                with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1):
                    return port
        time.sleep(0.05)
    raise RuntimeError("proxy.py did not start within 20 s")
