"""Structured errors: one base class, subclasses that carry the facts and build the message.

Only ``cli`` turns an :class:`InstError` into text and an exit code. Anything else that escapes
is a bug and shows a traceback. Third-party exceptions are translated where they are caught
(``raise SomeError(...) from exc``).
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; only the type checker needs it
    from typing import TypeVar

    E = TypeVar("E", bound=BaseException)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_CRED_IN_TEXT = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@\s:]*)(:[^/@\s]*)?@")


def redact_url(url: str) -> str:
    """Return *url* with any password (or lone token) replaced by ``****``.

    ``https://user:secret@host/`` becomes ``https://user:****@host/``; a bare token
    ``https://token@host/`` becomes ``https://****@host/``.
    """
    if "@" not in url:
        return url
    from urllib.parse import urlsplit, urlunsplit  # lazily: start-up time

    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, _password = userinfo.partition(":")
    masked = f"{user}:****" if sep else "****"
    return urlunsplit(parts._replace(netloc=f"{masked}@{hostport}"))


def redact_text(text: str) -> str:
    """Mask credentials of every URL found inside free text (log lines, exception messages)."""

    def _mask(m: re.Match[str]) -> str:
        user = m.group("user")
        if m.group(3) is not None:
            return f"{m.group('scheme')}{user}:****@"
        return f"{m.group('scheme')}****@"

    return _CRED_IN_TEXT.sub(_mask, text)


def find_cause(exc: BaseException, kind: type[E]) -> E | None:
    """The first *kind* exception inside *exc*: its args, ``__cause__``, ``__context__`` and
    the ``reason``/``original_error`` attributes urllib3 wraps errors in."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return e
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        for nxt in (e.__cause__, e.__context__, getattr(e, "reason", None),
                    getattr(e, "original_error", None)):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return None


class InstError(Exception):
    """Base of every error inst reports to a user.

    ``message`` is the one-line cause; ``hint`` an optional next step; ``exit_code`` follows the
    CLI contract: 1 the operation failed, 2 bad usage or bad configuration.
    """

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(redact_text(message))
        self.message = redact_text(message)
        self.hint = redact_text(hint) if hint else None

    def __str__(self) -> str:
        return self.message


class UsageError(InstError):
    """The command line is wrong (unknown flag, missing argument, bad value)."""

    exit_code = EXIT_USAGE


class ConfigError(InstError):
    """A configuration problem tied to a place: file, line, column, key.

    Several problems found in one pass are raised together as :class:`ConfigErrors`.
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        col: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path, self.line, self.col, self.key = path, line, col, key
        super().__init__(self._place() + message, hint=hint)
        self.detail = message

    def _place(self) -> str:
        if self.path is None:
            return ""
        place = self.path
        if self.line is not None:
            place += f":{self.line}"
            if self.col is not None:
                place += f":{self.col}"
        return place + ": "


class ConfigErrors(InstError):
    """Every problem found in a configuration source, reported in one run."""

    exit_code = EXIT_USAGE

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.message for e in errors))


class NetworkError(InstError):
    """A request failed: connection refused, reset, timed out, too many redirects, bad status."""

    def __init__(self, url: str, cause: str, *, status: int | None = None, hint: str | None = None):
        self.url = redact_url(url)
        self.cause = cause
        self.status = status
        super().__init__(f"{cause}: {self.url}", hint=hint)


class TLSError(NetworkError):
    """A certificate could not be verified (or the server wanted a client certificate).

    ``reason`` is a short code: unknown-issuer, expired, not-yet-valid, hostname-mismatch,
    self-signed, client-cert-required, proxy-resigns, handshake.
    """

    def __init__(self, url: str, reason: str, detail: str, *, hint: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(url, f"TLS certificate problem ({detail})", hint=hint)


class IndexError_(InstError):
    """An index page or metadata file is malformed, too large or otherwise unusable."""

    def __init__(self, url: str, cause: str, *, hint: str | None = None) -> None:
        self.url = redact_url(url)
        super().__init__(f"{cause}: {self.url}", hint=hint)


class HashMismatch(InstError):
    """Downloaded bytes do not match the expected digest."""

    def __init__(self, name: str, url: str, expected: str, actual: str, *,
                 hint: str | None = "the file was deleted; if the index changed, retry with "
                                    "--refresh") -> None:
        self.name, self.url, self.expected, self.actual = name, redact_url(url), expected, actual
        super().__init__(
            f"hash mismatch for {name} from {self.url}: expected sha256={expected}, "
            f"got sha256={actual}",
            hint=hint,
        )


class ResolutionError(InstError):
    """No set of versions satisfies the requirements; ``message`` explains the chain."""


class RequirementError(InstError):
    """A requirement string or requirements file is malformed."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 hint: str | None = None) -> None:
        self.path, self.line = path, line
        place = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(place + message, hint=hint)


class WheelError(InstError):
    """A wheel is refused: bad path, bad RECORD, bad metadata. Nothing was written."""

    def __init__(self, wheel: str, message: str, *, entry: str | None = None) -> None:
        self.wheel, self.entry = wheel, entry
        where = f" (entry {entry!r})" if entry else ""
        super().__init__(f"{wheel}: {message}{where}")


class EnvironmentError_(InstError):
    """The target environment cannot be found or queried."""


class InstallError(InstError):
    """Installing or uninstalling failed; the environment was rolled back."""
