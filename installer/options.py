"""The option table: every setting is declared here once.

The JSON Schema (``schemas/inst.schema.json``), the argparse flags, the ``INST_*`` environment
variable names and ``docs/reference/settings.md`` are all generated from :data:`OPTIONS`
(see :mod:`installer.schema`). Adding an option means adding one :class:`Option` below and
running ``python -m installer.schema --write``.
"""

from __future__ import annotations

from installer._record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    OptionType = Literal[
        "bool", "int", "float", "str", "path", "url", "enum",
        "list[str]", "list[path]", "list[url]", "indexes",
    ]
else:  # typing costs start-up time; the alias is only for the type checker
    OptionType = str

#: Every command inst has. ``help`` is a pseudo-command and takes no settings.
COMMANDS: tuple[str, ...] = (
    "install", "download", "uninstall", "list", "freeze", "show", "venv", "cache", "config",
    "debug",
)

_NET = ("install", "download", "list", "debug")
_RESOLVE = ("install", "download")
_ENV = ("install", "download", "uninstall", "list", "freeze", "show", "venv")
_ALL = COMMANDS


@record
class Option:
    """One setting: its key, type, default, how to set it, and which commands read it."""

    key: str
    type: OptionType
    default: object
    help: str
    example: object
    commands: tuple[str, ...]
    flag: str | None = None  # "" means: derive ``--<key>``; None means: no flag
    short: str | None = None
    choices: tuple[str, ...] = ()
    env: bool = True  # has an ``INST_<KEY>`` variable
    default_doc: str | None = None  # how the docs describe a computed default

    @property
    def env_var(self) -> str | None:
        """``INST_<KEY>`` with the key upper-cased and ``-`` as ``_``."""
        return "INST_" + self.key.upper().replace("-", "_") if self.env else None

    @property
    def flag_name(self) -> str | None:
        """The long flag, ``--<key>`` unless the table says otherwise."""
        if self.flag is None:
            return None
        return self.flag or f"--{self.key}"

    @property
    def is_list(self) -> bool:
        """True for list types, whose flags repeat and whose env values split on whitespace."""
        return self.type.startswith("list[")


def _o(key: str, type_: OptionType, default: object, help_: str, example: object,
       commands: tuple[str, ...], **kw: object) -> Option:
    kw.setdefault("flag", "")
    return Option(key, type_, default, help_, example, commands, **kw)  # type: ignore[arg-type]


OPTIONS: tuple[Option, ...] = (
    # --- indexes -------------------------------------------------------------------------------
    _o("index-url", "url", "https://pypi.org/simple",
       "Base URL of the main package index (PEP 503/691 simple API).",
       "https://pypi.example.com/simple", _NET, short="-i"),
    _o("extra-index-url", "list[url]", [],
       "More indexes, consulted after index-url (see index-strategy).",
       ["https://extra.example.com/simple"], _NET),
    _o("index", "indexes", [],
       "Named indexes as [[index]] tables: name, url, and optionally cert and client-cert that "
       "apply to every URL under that index's URL. They come before extra-index-url.",
       [{"name": "corp", "url": "https://pypi.corp.example/simple", "cert": "/etc/corp-ca.pem"}],
       _NET, flag=None, env=False),
    _o("find-links", "list[str]", [],
       "Local folders or HTML pages whose links are candidate files.",
       ["./wheels"], _NET, short="-f"),
    _o("no-index", "bool", False, "Ignore index-url, extra-index-url and [[index]]; use only "
       "find-links.", True, _NET),
    _o("index-strategy", "enum", "first-index",
       "first-index takes a project from the first index that has it (an extra index cannot "
       "hijack a name); unsafe-best-match compares versions across all indexes.",
       "unsafe-best-match", (*_RESOLVE, "list"), choices=("first-index", "unsafe-best-match")),
    # --- TLS and network -----------------------------------------------------------------------
    _o("cert", "path", None,
       "PEM CA bundle used instead of the roots trust would give. Also read from "
       "REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and SSL_CERT_FILE, below every inst setting.",
       "/etc/ssl/corp-ca.pem", _NET),
    _o("client-cert", "path", None,
       "PEM file with a client certificate and its key, for mutual TLS.",
       "/etc/ssl/me.pem", _NET),
    _o("trust", "enum", "certifi",
       "Where trusted root certificates come from: certifi (Mozilla's bundle), system (the OS "
       "store through truststore) or system+certifi.",
       "system", _NET, choices=("certifi", "system", "system+certifi")),
    _o("trusted-host", "list[str]", [],
       "Hosts (host or host:port, exact match) for which certificate verification is skipped "
       "and plain http is allowed. Every run that uses one warns.",
       ["pypi.internal.example"], _NET),
    _o("proxy", "str", None,
       "Proxy URL for http and https (CONNECT); also read from HTTPS_PROXY/HTTP_PROXY.",
       "http://proxy.example:3128", _NET),
    _o("no-proxy", "list[str]", [],
       "Hosts or domain suffixes that bypass the proxy; also read from NO_PROXY.",
       ["localhost", ".internal.example"], _NET),
    _o("timeout", "float", 15.0, "Connect and read timeout in seconds.", 30.0, _NET),
    _o("retries", "int", 5,
       "Retries for connection errors, read errors and 429/500/502/503/504 answers, with "
       "exponential backoff (Retry-After honoured, capped).", 3, _NET),
    _o("concurrency", "int", 8,
       "How many requests (pages, metadata, downloads) run at once.", 16, _NET),
    # --- cache ---------------------------------------------------------------------------------
    _o("cache-dir", "path", None, "Where downloaded files, pages and unpacked wheels are cached.",
       "/var/cache/inst", _ALL, default_doc="platformdirs.user_cache_path('inst')"),
    _o("no-cache", "bool", False, "Do not read or write the cache.", True, _NET),
    _o("refresh", "bool", False,
       "Revalidate cached index pages and metadata instead of trusting their freshness.",
       True, _NET),
    # --- target environment --------------------------------------------------------------------
    _o("python", "path", None,
       "Target interpreter or virtual environment folder. Default: $VIRTUAL_ENV, else the "
       "nearest .venv from the working directory upward.", ".venv/bin/python", _ENV),
    # --- resolution ----------------------------------------------------------------------------
    _o("pre", "bool", False, "Allow pre-release versions.", True, _RESOLVE),
    _o("upgrade", "bool", False,
       "Upgrade every requirement to the newest allowed version (default: keep what is "
       "installed when it satisfies).", True, ("install",), short="-U"),
    _o("upgrade-package", "list[str]", [], "Upgrade only these packages.", ["requests"],
       ("install",), short="-P"),
    _o("force-reinstall", "bool", False, "Reinstall even when the installed version satisfies.",
       True, ("install",)),
    _o("no-deps", "bool", False, "Do not install dependencies.", True, _RESOLVE),
    _o("only-binary", "list[str]", [],
       "Projects (or :all:) for which only wheels are used. inst installs wheels only for now, "
       "so this is always in effect; the option exists for pip compatibility.",
       [":all:"], _RESOLVE),
    _o("no-binary", "list[str]", [],
       "Projects (or :all:) for which wheels are refused (leaves no candidate until sdists are "
       "supported).", ["some-project"], _RESOLVE),
    _o("require-hashes", "bool", False,
       "Every requirement must be pinned with == and carry --hash; files are checked against "
       "them.", True, _RESOLVE),
    # --- install -------------------------------------------------------------------------------
    _o("compile-bytecode", "bool", False, "Compile installed .py files to .pyc.", True,
       ("install",)),
    _o("link-mode", "enum", "hardlink",
       "How files go from the unpacked-wheel cache into the environment: hardlink (falls back "
       "to copy across filesystems), copy, or symlink.", "copy", ("install",),
       choices=("hardlink", "copy", "symlink")),
    # --- output --------------------------------------------------------------------------------
    _o("color", "enum", "auto", "Colored output.", "never", _ALL,
       choices=("auto", "always", "never")),
    _o("progress", "bool", True, "Progress bars on a terminal.", False, _ALL),
    _o("quiet", "int", 0, "Less output (-q, -qq).", 1, _ALL, short="-q"),
    _o("verbose", "int", 0, "More output (-v, -vv).", 1, _ALL, short="-v"),
)

BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS}
BY_ENV: dict[str, Option] = {o.env_var: o for o in OPTIONS if o.env_var}

#: Settings that choose configuration files rather than being read from them.
META_ENV = {"INST_CONFIG_FILE": "config-file", "INST_NO_CONFIG": "no-config"}


def options_for(command: str) -> tuple[Option, ...]:
    """The options that *command* reads (and so the flags it accepts)."""
    return tuple(o for o in OPTIONS if command in o.commands)


def closest_key(key: str) -> str | None:
    """The known key nearest to *key* (for did-you-mean hints), or None."""
    import difflib

    match = difflib.get_close_matches(key, list(BY_KEY), n=1, cutoff=0.6)
    return match[0] if match else None
