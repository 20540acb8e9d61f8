"""TLS trust policy: which roots verify a server, one ``ssl.SSLContext`` per policy.

Policy (docs/tls.md): ``trust`` picks the roots (certifi, the OS store through truststore, or
both); ``cert`` replaces those roots with one PEM bundle; ``client-cert`` adds a client
certificate; ``trusted-host`` turns verification off for exact hosts. Nothing else ever turns
verification off, and a broken ``cert`` path is an error, never a silent fallback.

This module does not import urllib3. The diagnosis helpers (``diagnose``, ``explain``) open raw
sockets (optionally through an HTTP CONNECT tunnel) so ``inst debug tls`` and every command's
certificate error can say why verification failed and what fixes it.
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from installer.errors import ConfigError, NetworkError, TLSError, find_cause, redact_url
from installer.hosts import host_is_trusted

TrustMode = Literal["certifi", "system", "system+certifi"]
TRUST_MODES: tuple[str, ...] = ("certifi", "system", "system+certifi")


@dataclass(frozen=True)
class TrustPolicy:
    """Where roots come from for one set of URLs. ``origins`` says where each part was set."""

    trust: TrustMode = "certifi"
    cert: str | None = None
    client_cert: str | None = None
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def roots_label(self) -> str:
        """Human name of the roots this policy verifies with."""
        if self.cert:
            return f"the bundle {self.cert}"
        return {
            "certifi": "certifi's roots",
            "system": "the system store",
            "system+certifi": "the system store and certifi's roots",
        }[self.trust]

    def origin(self, part: str) -> str:
        """Where *part* (trust, cert, client-cert) was set, ``default`` if unknown."""
        return self.origins.get(part, "default")


@dataclass(frozen=True)
class TrustConfig:
    """The default policy, per-index policies, trusted hosts, and bundles the diagnosis may try.

    ``known_bundles`` holds (path, where it was set) for CA bundles that are configured but not
    in effect (shadowed ``cert`` values, ambient env bundles); ``diagnose`` tries them.
    """

    default: TrustPolicy
    per_index: tuple[tuple[str, TrustPolicy], ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    known_bundles: tuple[tuple[str, str], ...] = ()
    _cache: dict[tuple[TrustPolicy, bool], ssl.SSLContext] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    _lock: threading.Lock = field(
        default_factory=threading.Lock, compare=False, hash=False, repr=False
    )

    def policy_for(self, url: str) -> TrustPolicy:
        """The policy for *url*: the longest matching index URL prefix, else same host, else
        the default. Index files often live on another path of the same server, and TLS trust
        is a property of the server, so an index's cert also covers its host:port."""
        best: tuple[int, TrustPolicy] | None = None
        for prefix, policy in self.per_index:
            if _under(url, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), policy)
        if best is not None:
            return best[1]
        for prefix, policy in self.per_index:
            if _origin(prefix) == _origin(url):
                return policy
        return self.default

    def is_trusted(self, url: str) -> bool:
        """True when *url*'s host (or host:port) is listed in trusted-host, exactly."""
        return host_is_trusted(url, self.trusted_hosts)

    def context_for(self, url: str) -> ssl.SSLContext:
        """The SSL context for *url*; one per distinct policy, built once and cached."""
        key = (self.policy_for(url), self.is_trusted(url))
        with self._lock:
            ctx = self._cache.get(key)
            if ctx is None:
                ctx = build_context(key[0], verify=not key[1])
                self._cache[key] = ctx
        return ctx

    def explain(self, url: str, exc: BaseException, *, proxy: str | None = None,
                timeout: float = 5.0) -> TLSError:
        """Turn a TLS failure on *url* into a TLSError with a short diagnosis and the fix."""
        try:
            diag = diagnose(url, self, proxy=proxy, exc=exc, timeout=timeout)
        except (OSError, NetworkError, ConfigError):
            reason, detail = classify(exc, self.policy_for(url))
            return TLSError(url, reason, detail)
        return TLSError(url, diag.reason, diag.detail, hint=diag.fix)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), port or default


def _under(url: str, prefix: str) -> bool:
    base = prefix.rstrip("/")
    return url == base or url.startswith(base + "/")


# --- building contexts ---------------------------------------------------------------------


def _where(origin: str | None) -> str:
    return f" (set by {origin})" if origin and origin != "default" else ""


def check_pem_file(path: str, key: str, origin: str | None, *, need_key: bool = False) -> None:
    """Raise ConfigError unless *path* is a readable file holding a PEM certificate."""
    p = Path(path)
    where = _where(origin)
    hint = "fix the path or remove the setting; inst does not fall back to other roots"
    if not p.exists():
        raise ConfigError(f"{key} file {path} does not exist{where}", key=key, hint=hint)
    if p.is_dir():
        raise ConfigError(f"{key} path {path} is a folder, not a PEM file{where}", key=key,
                          hint=hint)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {key} file {path}: {exc.strerror}{where}", key=key,
                          hint=hint) from exc
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigError(f"{key} file {path} holds no PEM certificate{where}", key=key,
                          hint=hint)
    if need_key and b"PRIVATE KEY-----" not in data:
        raise ConfigError(f"{key} file {path} holds no PEM private key{where}", key=key,
                          hint="client-cert must hold the certificate and its key")


def _roots_context(policy: TrustPolicy) -> ssl.SSLContext:
    if policy.cert is None and policy.trust in ("system", "system+certifi"):
        import truststore

        ctx: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if policy.trust == "system+certifi":
            import certifi

            ctx.load_verify_locations(cafile=certifi.where())
        return ctx
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if policy.cert is not None:
        check_pem_file(policy.cert, "cert", policy.origin("cert"))
        try:
            ctx.load_verify_locations(cafile=policy.cert)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"cert file {policy.cert} is not a valid PEM bundle ({exc.reason})"
                f"{_where(policy.origin('cert'))}", key="cert") from exc
    else:
        import certifi

        ctx.load_verify_locations(cafile=certifi.where())
    return ctx


def build_context(policy: TrustPolicy, *, verify: bool = True) -> ssl.SSLContext:
    """Build the SSL context for *policy* (TLS >= 1.2, hostname checks on).

    ``verify=False`` is only for trusted hosts: same client certificate, no verification.
    Never calls ``truststore.inject_into_ssl``.
    """
    if verify:
        ctx = _roots_context(policy)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if policy.client_cert:
        origin = policy.origin("client-cert")
        check_pem_file(policy.client_cert, "client-cert", origin, need_key=True)
        try:
            ctx.load_cert_chain(policy.client_cert)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"client-cert file {policy.client_cert} could not be loaded "
                f"({getattr(exc, 'reason', None) or exc}){_where(origin)}",
                key="client-cert") from exc
    return ctx


# --- the presented chain -------------------------------------------------------------------


@dataclass(frozen=True)
class CertInfo:
    """The parts of a certificate a person needs to judge it."""

    subject: str
    issuer: str
    not_before: str
    not_after: str
    names: tuple[str, ...] = ()

    @property
    def self_issued(self) -> bool:
        """True when the certificate names itself as issuer."""
        return self.subject == self.issuer


_RDN_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
              "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}


def _name(rdns: Any) -> str:
    parts = [f"{_RDN_SHORT.get(k, k)}={v}" for rdn in rdns or () for (k, v) in rdn]
    return ", ".join(parts) or "(empty)"


def cert_info(decoded: Mapping[str, Any]) -> CertInfo:
    """CertInfo from the dict form that ``getpeercert()`` and ``Certificate.get_info()`` use."""
    names = tuple(v for (_k, v) in decoded.get("subjectAltName", ()))
    return CertInfo(
        subject=_name(decoded.get("subject")), issuer=_name(decoded.get("issuer")),
        not_before=str(decoded.get("notBefore", "?")), not_after=str(decoded.get("notAfter", "?")),
        names=names,
    )


def _decode_der(der: bytes) -> CertInfo:
    """Decode DER with the ssl module only (cryptography is not a runtime dependency)."""
    import os
    import tempfile

    pem = ssl.DER_cert_to_PEM_cert(der)
    fd, name = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(pem)
        decoded = ssl._ssl._test_decode_cert(name)  # type: ignore[attr-defined]
    finally:
        os.unlink(name)
    return cert_info(decoded)


def presented_chain(sock: ssl.SSLSocket) -> list[CertInfo]:
    """The certificates the server sent, leaf first.

    Python 3.13+ has ``get_unverified_chain()``; 3.10-3.12 have the same method on the private
    ``_sslobj`` (truststore relies on it too). Without either only the leaf is available.
    """
    getter = getattr(sock, "get_unverified_chain", None)
    sslobj = getattr(sock, "_sslobj", None)
    if getter is None and sslobj is not None:
        getter = getattr(sslobj, "get_unverified_chain", None)
    if getter is not None:
        certs = getter() or []
        out: list[CertInfo] = []
        for cert in certs:
            if isinstance(cert, bytes):
                out.append(_decode_der(cert))
            else:
                out.append(cert_info(cert.get_info()))
        if out:
            return out
    der = sock.getpeercert(binary_form=True)
    return [_decode_der(der)] if der else []


# --- raw connections for probing -----------------------------------------------------------


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def open_tunnel(host: str, port: int, proxy: str | None, timeout: float) -> socket.socket:
    """A TCP socket to host:port, directly or through an HTTP CONNECT proxy."""
    if not proxy:
        return socket.create_connection((host, port), timeout=timeout)
    p = urlsplit(proxy)
    sock = socket.create_connection((p.hostname or "", p.port or 80), timeout=timeout)
    if p.scheme == "https":
        pctx = build_context(TrustPolicy())
        sock = pctx.wrap_socket(sock, server_hostname=p.hostname)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if p.username:
        token = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(token).decode())
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    if len(status.split()) < 2 or status.split()[1] != "200":
        sock.close()
        raise NetworkError(f"https://{target}/", f"proxy refused CONNECT ({status or 'no answer'})")
    return sock


def _insecure_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def fetch_chain(url: str, *, proxy: str | None = None, timeout: float = 5.0) -> list[CertInfo]:
    """Connect with verification off only to read the certificates the server presents."""
    host, port = _host_port(url)
    sock = open_tunnel(host, port, proxy, timeout)
    with _insecure_context().wrap_socket(sock, server_hostname=host) as ssock:
        return presented_chain(ssock)


def attempt(url: str, ctx: ssl.SSLContext, *, proxy: str | None = None,
            timeout: float = 5.0, request: bool = True) -> str:
    """Handshake with *ctx* (and, with *request*, send a HEAD and read the status line).

    The request matters: under TLS 1.3 a server that requires a client certificate only says
    so after the client's handshake finished. Raises the ssl/OS error on failure.
    """
    host, port = _host_port(url)
    sock = open_tunnel(host, port, proxy, timeout)
    with ctx.wrap_socket(sock, server_hostname=host) as ssock:
        if not request:
            return ""
        path = urlsplit(url).path or "/"
        ssock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      "User-Agent: inst-debug-tls\r\nConnection: close\r\n\r\n".encode())
        data = ssock.recv(4096)
        if not data:
            raise ConnectionResetError("the server closed the connection without answering")
        return data.split(b"\r\n", 1)[0].decode("latin-1", "replace")


# --- classifying failures ------------------------------------------------------------------

_VERIFY_REASONS: dict[int, str] = {
    2: "unknown-issuer", 20: "unknown-issuer", 21: "unknown-issuer", 19: "unknown-issuer",
    18: "self-signed", 10: "expired", 9: "not-yet-valid", 62: "hostname-mismatch",
    64: "hostname-mismatch",
}
VERIFICATION_REASONS = ("unknown-issuer", "self-signed", "proxy-resigns")


def find_ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ssl.SSLError inside *exc* (urllib3 wraps it in args and __cause__)."""
    return find_cause(exc, ssl.SSLError)


def classify(exc: BaseException, policy: TrustPolicy) -> tuple[str, str]:
    """A reason code and a short detail for a TLS failure, without touching the network."""
    err = find_ssl_error(exc)
    if isinstance(err, ssl.SSLCertVerificationError):
        code = err.verify_code
        reason = _VERIFY_REASONS.get(code, "handshake")
        msg = err.verify_message or str(err)
        return reason, f"{reason.replace('-', ' ')}: {msg}"
    text = (getattr(err, "reason", None) or str(err or exc)).upper()
    if "CERTIFICATE_REQUIRED" in text or ("HANDSHAKE_FAILURE" in text and not policy.client_cert):
        return "client-cert-required", _client_cert_detail(policy)
    if policy.client_cert and ("BAD_CERTIFICATE" in text or "UNKNOWN_CA" in text):
        return "client-cert-required", _client_cert_detail(policy)
    return "handshake", f"handshake failed: {getattr(err, 'reason', None) or err or exc}"


def _client_cert_detail(policy: TrustPolicy) -> str:
    if policy.client_cert:
        return (f"client certificate rejected: the server did not accept "
                f"{policy.client_cert}")
    return "client certificate required: the server asks for one and none is configured"


# --- diagnosis -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """The outcome of checking a URL against the trust policy, with a fix when one exists."""

    url: str
    ok: bool
    reason: str  # "ok" or a TLSError reason code
    detail: str
    fix: str | None = None
    chain: tuple[CertInfo, ...] = ()
    direct_chain: tuple[CertInfo, ...] | None = None
    status_line: str = ""


def _remove_cert_step(policy: TrustPolicy) -> str | None:
    origin = policy.origin("cert")
    if policy.cert is None:
        return None
    if origin.startswith("env "):
        return f"unset {origin[4:]}"
    if origin.startswith("flag "):
        return f"drop {origin[5:]}"
    return "inst config unset global.cert"


def _set_cert_step(policy: TrustPolicy, path: str) -> str:
    origin = policy.origin("cert")
    if origin.startswith("flag "):
        return f"use --cert {path}"
    if origin == "env INST_CERT":
        return f"export INST_CERT={path}"
    return f"inst config set global.cert {path}"


def _candidates(url: str, config: TrustConfig, policy: TrustPolicy
                ) -> list[tuple[str, TrustPolicy, str]]:
    """(label, policy to try, fix) for every other root source inst knows."""
    out: list[tuple[str, TrustPolicy, str]] = []
    cc = policy.client_cert
    modes: tuple[tuple[TrustMode, str], ...] = (
        ("system", "the system store"), ("certifi", "certifi's roots"))
    for mode, label in modes:
        if policy.cert is None and policy.trust in (mode, "system+certifi"):
            continue
        steps = [s for s in (_remove_cert_step(policy),) if s]
        steps.append(f"inst config set global.trust {mode}")
        out.append((label, TrustPolicy(trust=mode, client_cert=cc), " and ".join(steps)))
    bundles: list[tuple[str, str]] = list(config.known_bundles)
    bundles += [(p.cert, p.origin("cert")) for _, p in config.per_index if p.cert]
    if config.default.cert:
        bundles.append((config.default.cert, config.default.origin("cert")))
    seen = {policy.cert}
    for path, origin in bundles:
        if path in seen:
            continue
        seen.add(path)
        out.append((f"the bundle {path} ({origin})", TrustPolicy(cert=path, client_cert=cc),
                    _set_cert_step(policy, path)))
    return out


def _find_fix(url: str, config: TrustConfig, policy: TrustPolicy, proxy: str | None,
              timeout: float) -> tuple[str, str] | None:
    for label, cand, fix in _candidates(url, config, policy):
        try:
            attempt(url, build_context(cand), proxy=proxy, timeout=timeout, request=False)
        except (OSError, ConfigError, NetworkError):
            continue
        return label, fix
    return None


def _last_resort(host: str) -> str:
    return (f"as a last resort, inst config set global.trusted-host {host} turns verification "
            f"off for {host}: anyone on the network path could then impersonate it")


def _describe(reason: str, chain: Sequence[CertInfo], policy: TrustPolicy, host: str,
              fallback: str) -> str:
    leaf = chain[0] if chain else None
    if leaf is None:
        return fallback
    roots = policy.roots_label()
    if reason == "unknown-issuer":
        top = chain[-1]
        return f"unknown issuer: {top.issuer} is not in {roots}"
    if reason == "self-signed":
        return f"self-signed: {leaf.subject} signed its own certificate, which is not in {roots}"
    if reason == "expired":
        return f"expired: the certificate for {leaf.subject} expired on {leaf.not_after}"
    if reason == "not-yet-valid":
        return (f"not yet valid: the certificate for {leaf.subject} is valid from "
                f"{leaf.not_before}")
    if reason == "hostname-mismatch":
        names = ", ".join(leaf.names) or leaf.subject
        return f"hostname mismatch: the certificate is for {names}, not {host}"
    return fallback


def _fix_without_roots(reason: str, host: str, chain: Sequence[CertInfo],
                       policy: TrustPolicy) -> str:
    if reason == "expired":
        return f"the server's certificate must be renewed; {_last_resort(host)}"
    if reason == "not-yet-valid":
        return ("check this machine's clock, or wait until the certificate becomes valid; "
                + _last_resort(host))
    if reason == "hostname-mismatch":
        names = ", ".join(chain[0].names) if chain else "the name in the certificate"
        return f"use a URL with a name the certificate covers ({names})"
    if reason == "client-cert-required":
        if policy.client_cert:
            return "get a client certificate the server accepts and set it with client-cert"
        return "inst config set global.client-cert /path/to/client.pem (certificate and key)"
    if reason == "proxy-resigns":
        return ("add the proxy's CA certificate: inst config set global.cert "
                "/path/to/proxy-ca.pem (or add it to the system store and "
                "inst config set global.trust system)")
    if reason in ("unknown-issuer", "self-signed"):
        return ("get the CA certificate that signed it and run inst config set global.cert "
                f"/path/to/ca.pem; {_last_resort(host)}")
    return "check the server's TLS configuration"


def diagnose(url: str, config: TrustConfig, *, proxy: str | None = None,
             exc: BaseException | None = None, timeout: float = 5.0) -> Diagnosis:
    """Check *url* against *config*; on failure name the cause and find the fix.

    With *exc* (a failure already seen) the first attempt is skipped. Otherwise this connects
    with the effective context. Then it reads the presented chain (verification off), compares
    it with the direct view when a proxy is used, and tries the other roots inst knows.
    """
    policy = config.policy_for(url)
    host, _port = _host_port(url)
    status = ""
    if exc is None:
        try:
            status = attempt(url, config.context_for(url), proxy=proxy, timeout=timeout)
        except (ssl.SSLError, ssl.CertificateError) as e:
            exc = e
        except ConnectionResetError as e:
            exc = e
    try:
        chain = tuple(fetch_chain(url, proxy=proxy, timeout=timeout))
    except (OSError, NetworkError):
        chain = ()
    if exc is None:
        done = (f"not verified: {host} is a trusted-host" if config.is_trusted(url)
                else f"verified with {policy.roots_label()}")
        return Diagnosis(url, True, "ok", done, chain=chain, status_line=status)
    reason, fallback = classify(exc, policy)
    if isinstance(exc, ConnectionResetError) and reason == "handshake":
        reason, fallback = "client-cert-required", _client_cert_detail(policy)
    direct: tuple[CertInfo, ...] | None = None
    detail = _describe(reason, chain, policy, host, fallback)
    if proxy and reason in VERIFICATION_REASONS:
        try:
            direct = tuple(fetch_chain(url, proxy=None, timeout=timeout))
        except (OSError, NetworkError):
            direct = None
        if direct and chain and direct[0].issuer != chain[0].issuer:
            reason = "proxy-resigns"
            detail = (f"proxy re-signs traffic: through {redact_url(proxy)} the certificate is "
                      f"issued by {chain[0].issuer}, directly by {direct[0].issuer}; "
                      f"{policy.roots_label()} do not include the proxy's CA")
    fix: str | None = None
    if reason in VERIFICATION_REASONS:
        found = _find_fix(url, config, policy, proxy, timeout)
        if found:
            fix = f"{found[0]} verifies it: {found[1]}"
    if fix is None:
        fix = _fix_without_roots(reason, host, chain, policy)
    return Diagnosis(url, False, reason, detail, fix, chain, direct)
