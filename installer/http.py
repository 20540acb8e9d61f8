"""The HTTP layer: urllib3 pools per SSL context, proxies, retries, redirects, errors.

This module receives SSL contexts through a callable (it does not import ``trust``) and
translates every urllib3/ssl exception into :class:`NetworkError` or :class:`TLSError` here, at
the boundary. Import it only where HTTP is needed: the config path never does.

Rules (issue 3): certificate errors are never retried; connect errors, read errors and
429/500/502/503/504 are retried with exponential backoff (Retry-After honoured, capped).
Redirects are followed here (not by urllib3) so that Authorization is dropped whenever the
origin changes and an https->http downgrade is refused unless the target host is trusted.
"""

from __future__ import annotations

import base64
import platform
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import urllib3
from urllib3 import exceptions as u3e

from installer import __version__
from installer.errors import (
    InstError,
    NetworkError,
    TLSError,
    find_cause,
    redact_text,
    redact_url,
)
from installer.hosts import host_is_trusted
from installer.httpdate import http_date

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ORIGIN_HEADERS = ("authorization", "cookie", "proxy-authorization")


def default_user_agent() -> str:
    """``inst/<version> (Python X.Y.Z; <OS> <release>)``."""
    return (f"inst/{__version__} (Python {platform.python_version()}; "
            f"{platform.system()} {platform.release()})")


@dataclass(frozen=True)
class HttpConfig:
    """Network settings. ``timeout`` is the read timeout and, unless set, the connect one."""

    timeout: float = 15.0
    connect_timeout: float | None = None
    retries: int = 5
    backoff: float = 0.25
    max_retry_wait: float = 10.0
    proxy: str | None = None
    no_proxy: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    user_agent: str = field(default_factory=default_user_agent)
    pool_maxsize: int = 10
    max_redirects: int = 10


def select_proxy(url: str, proxy: str | None, no_proxy: Sequence[str]) -> str | None:
    """The proxy for *url*, or None when unset or NO_PROXY matches (host, suffix, ``*``)."""
    if not proxy:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    for raw in no_proxy:
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return None
        name, _, eport = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if eport and (not eport.isdigit() or port is None or int(eport) != port):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return None
    return proxy


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return (parts.scheme, (parts.hostname or "").lower(),
            parts.port or (443 if parts.scheme == "https" else 80))


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    clean = urlunsplit(parts._replace(netloc=hostport))
    return clean, (unquote(user), unquote(password))


def _basic(creds: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()


class Response:
    """An HTTP answer: final ``url``, ``status``, case-insensitive ``headers``, the body."""

    def __init__(self, url: str, raw: Any, *, stream: bool) -> None:
        self.url = url
        self.status: int = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self._raw = raw
        self._data: bytes | None = None if stream else raw.data

    @property
    def data(self) -> bytes:
        """The whole body (read now if this response was streamed)."""
        if self._data is None:
            self._data = b"".join(self.iter_bytes())
        return self._data

    def iter_bytes(self, chunk: int = 65536) -> Iterator[bytes]:
        """Yield the body in chunks; network errors become NetworkError."""
        if self._data is not None:
            yield self._data
            return
        complete = False
        try:
            yield from self._raw.stream(chunk)
            complete = True
        except (u3e.HTTPError, OSError) as exc:
            raise NetworkError(self.url, f"connection broken while reading ({_why(exc)})") from exc
        finally:
            if not complete:  # abandoned or broken: the rest of the body is never read
                self._raw.close()
            self._raw.release_conn()

    def release(self) -> None:
        """Return the connection to the pool; an unread body is drained only when small,
        otherwise the connection is closed (a hostile endless body must not be read)."""
        if self._data is None:
            _discard(self._raw)
        else:
            self._raw.release_conn()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


#: Unread bodies up to this size are read to keep the connection; larger ones close it.
DRAIN_LIMIT = 64 * 1024


def _discard(raw: Any) -> None:
    """Give up on *raw*'s body: drain it when small and of known length, else close."""
    remaining = getattr(raw, "length_remaining", None)
    if remaining is not None and remaining <= DRAIN_LIMIT:
        raw.drain_conn()
    else:
        raw.close()
    raw.release_conn()


def _why(exc: BaseException) -> str:
    """A short human cause for a urllib3/socket error (credentials redacted)."""
    if isinstance(exc, u3e.NameResolutionError):
        return "host name not found"
    if isinstance(exc, u3e.NewConnectionError):  # a subclass of ConnectTimeoutError
        inner = exc.__cause__ or exc.__context__
        if isinstance(inner, ConnectionRefusedError) or "refused" in str(exc).lower():
            return "connection refused"
        if isinstance(inner, TimeoutError) or "timed out" in str(exc).lower():
            return "connect timed out"
        return "could not connect"
    if isinstance(exc, u3e.ConnectTimeoutError):
        return "connect timed out"
    if isinstance(exc, (u3e.ReadTimeoutError, TimeoutError)):
        return "read timed out"
    if isinstance(exc, u3e.ProxyError):
        return f"proxy error ({_why(exc.original_error)})"
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(arg, BaseException):
            return _why(arg)
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, u3e.IncompleteRead) or "IncompleteRead" in repr(exc):
        return "the server closed the connection early"
    return redact_text(str(exc) or type(exc).__name__)


def _ssl_inside(exc: BaseException) -> ssl.SSLError | None:
    return find_cause(exc, ssl.SSLError)


def _transient_ssl(err: ssl.SSLError) -> bool:
    """EOF in the middle of TLS is a transport fault; certificate problems are not."""
    return isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)) or (
        "UNEXPECTED_EOF" in str(getattr(err, "reason", "") or "")
    )


class HttpClient:
    """A thread-safe HTTP client bound to a trust policy (through *context_for*)."""

    def __init__(self, config: HttpConfig, context_for: Callable[[str], ssl.SSLContext],
                 tls_error: Callable[[str, Exception], InstError] | None = None, *,
                 on_insecure: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._context_for = context_for
        self._tls_error = tls_error
        self._on_insecure = on_insecure
        self._sleep = sleep
        self._lock = threading.Lock()
        self._managers: dict[tuple[int, str | None], tuple[ssl.SSLContext, Any]] = {}
        self._creds: dict[tuple[str, str, int], tuple[str, str]] = {}
        self._warned: set[str] = set()
        self._count = 0
        urllib3.disable_warnings(u3e.InsecureRequestWarning)

    # -- public ---------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far (each retry and redirect hop counts)."""
        with self._lock:
            return self._count

    def get(self, url: str, headers: Mapping[str, str] | None = None, *,
            stream: bool = False, ok: Sequence[int] = (200,)) -> Response:
        """GET *url*; raise NetworkError unless the final status is in *ok*."""
        return self.request("GET", url, headers, stream=stream, ok=ok)

    def request(self, method: str, url: str, headers: Mapping[str, str] | None = None, *,
                stream: bool = False, ok: Sequence[int] = (200,)) -> Response:
        """Send a request, following redirects; errors are NetworkError/TLSError."""
        shown = url
        current, creds = _split_credentials(url)
        if creds:
            with self._lock:
                self._creds[_origin(current)] = creds
        hdrs = {k: v for k, v in (headers or {}).items()}
        auth_origin = _origin(current)
        visited = {current}
        for _hop in range(self.config.max_redirects + 1):
            raw = self._send(method, current, shown, self._headers_for(current, hdrs,
                                                                       auth_origin), stream)
            location = raw.headers.get("location")
            if raw.status in REDIRECT_STATUSES and location:
                _discard(raw)
                target, tcreds = _split_credentials(urljoin(current, location))
                self._check_redirect(shown, current, target, visited)
                visited.add(target)
                if _origin(target) != auth_origin:
                    hdrs = {k: v for k, v in hdrs.items() if k.lower() not in _ORIGIN_HEADERS}
                elif tcreds:
                    with self._lock:
                        self._creds[_origin(target)] = tcreds
                if raw.status == 303 or (raw.status in (301, 302) and method == "POST"):
                    method = "GET"
                current = target
                shown = target
                continue
            if raw.status not in ok:
                _discard(raw)
                raise NetworkError(shown, f"HTTP {raw.status} {raw.reason or ''}".strip(),
                                   status=raw.status)
            return Response(_with_creds(shown, current), raw, stream=stream)
        raise NetworkError(url, f"too many redirects (more than {self.config.max_redirects})")

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            managers = list(self._managers.values())
            self._managers.clear()
        for _ctx, manager in managers:
            manager.clear()

    # -- internals ------------------------------------------------------------------------

    def _headers_for(self, url: str, hdrs: Mapping[str, str],
                     auth_origin: tuple[str, str, int]) -> dict[str, str]:
        out = {"User-Agent": self.config.user_agent, **hdrs}
        if not any(k.lower() == "authorization" for k in out):
            with self._lock:
                creds = self._creds.get(_origin(url))
            if creds:
                out["Authorization"] = _basic(creds)
        return out

    def _check_redirect(self, shown: str, current: str, target: str, visited: set[str]) -> None:
        scheme = urlsplit(target).scheme
        if scheme not in ("http", "https"):
            raise NetworkError(shown, f"refused redirect to a {scheme or 'relative'} URL")
        if target in visited:
            raise NetworkError(shown, f"redirect loop (back to {redact_url(target)})")
        if (urlsplit(current).scheme == "https" and scheme == "http"
                and not host_is_trusted(target, self.config.trusted_hosts)):
            raise NetworkError(
                shown, f"refused redirect from https to plain http ({redact_url(target)})",
                hint="plain http is only allowed for hosts listed in trusted-host")

    def _check_url(self, url: str, shown: str) -> bool:
        parts = urlsplit(url)
        trusted = host_is_trusted(url, self.config.trusted_hosts)
        if parts.scheme not in ("http", "https"):
            raise NetworkError(shown, f"unsupported URL scheme {parts.scheme!r}")
        if parts.scheme == "http" and not trusted:
            raise NetworkError(shown, "refused plain http URL",
                               hint=f"use https, or add {parts.hostname} to trusted-host")
        if trusted and self._on_insecure is not None:
            host = parts.netloc.rpartition("@")[2]
            with self._lock:
                first = host not in self._warned
                self._warned.add(host)
            if first:
                self._on_insecure(host)
        return trusted

    def _manager(self, url: str, trusted: bool) -> Any:
        proxy = select_proxy(url, self.config.proxy, self.config.no_proxy)
        ctx = self._context_for(url) if urlsplit(url).scheme == "https" else None
        key = (id(ctx), proxy)
        with self._lock:
            found = self._managers.get(key)
            if found is not None:
                return found[1]
        kw: dict[str, Any] = {"maxsize": self.config.pool_maxsize, "block": False}
        if ctx is not None:
            kw["ssl_context"] = ctx
            if trusted:
                kw["assert_hostname"] = False
        if proxy:
            purl, pcreds = _split_credentials(proxy)
            pheaders = {"Proxy-Authorization": _basic(pcreds)} if pcreds else None
            pctx = self._context_for(purl) if urlsplit(purl).scheme == "https" else None
            manager: Any = urllib3.ProxyManager(purl, proxy_headers=pheaders,
                                                proxy_ssl_context=pctx, **kw)
        else:
            manager = urllib3.PoolManager(**kw)
        with self._lock:
            found = self._managers.setdefault(key, (ctx, manager))  # type: ignore[arg-type]
        return found[1]

    def _send(self, method: str, url: str, shown: str, headers: dict[str, str],
              stream: bool) -> Any:
        trusted = self._check_url(url, shown)
        timeout = urllib3.Timeout(connect=self.config.connect_timeout or self.config.timeout,
                                  read=self.config.timeout)
        attempt = 0
        while True:
            manager = self._manager(url, trusted)
            with self._lock:
                self._count += 1
            try:
                raw = manager.urlopen(method, url, headers=headers, retries=False,
                                      redirect=False, timeout=timeout,
                                      preload_content=not stream)
            except (u3e.HTTPError, OSError) as exc:
                err = _ssl_inside(exc)
                if err is not None and not _transient_ssl(err):
                    raise self._tls(shown, exc) from exc
                if attempt >= self.config.retries:
                    raise NetworkError(shown, _why(exc) + _tries(attempt)) from exc
                self._sleep(self._backoff(attempt))
                attempt += 1
                continue
            if raw.status in RETRY_STATUSES and attempt < self.config.retries:
                wait = self._retry_after(raw) or self._backoff(attempt)
                _discard(raw)
                self._sleep(min(wait, self.config.max_retry_wait))
                attempt += 1
                continue
            return raw

    def _backoff(self, attempt: int) -> float:
        return float(min(self.config.backoff * (2 ** attempt), self.config.max_retry_wait))

    def _retry_after(self, raw: Any) -> float | None:
        value = raw.headers.get("retry-after")
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = http_date(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return max(0.0, when - time.time())

    def _tls(self, url: str, exc: Exception) -> InstError:
        if self._tls_error is not None:
            return self._tls_error(url, exc)
        err = _ssl_inside(exc)
        return TLSError(url, "handshake", str(getattr(err, "reason", None) or err or exc))


def _tries(attempt: int) -> str:
    return f" (after {attempt + 1} attempts)" if attempt else ""


def _with_creds(shown: str, current: str) -> str:
    """The final URL as the caller knows it: with its credentials if the origin is the same."""
    return shown if _split_credentials(shown)[0] == current else current
