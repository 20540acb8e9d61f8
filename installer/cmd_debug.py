"""``inst debug tls URL``: the trust policy in effect, the server's chain, the verdict, the fix."""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

from installer.context import Context
from installer.errors import EXIT_FAILED, EXIT_OK, NetworkError, UsageError, redact_url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``debug tls URL`` (cli adds the settings flags to ``tls`` too)."""
    sub = parser.add_subparsers(dest="debug_command", metavar="{tls}",
                                parser_class=type(parser))
    tls = sub.add_parser("tls", help="Explain the TLS trust in effect for URL and test it.",
                         description="Explain the TLS trust in effect for URL and test it.")
    tls.add_argument("url", metavar="URL", help="An https:// URL to connect to.")


def run(ctx: Context) -> int:
    """Dispatch ``inst debug`` subcommands."""
    if getattr(ctx.args, "debug_command", None) != "tls":
        raise UsageError("inst debug: a subcommand is required", hint="inst debug tls URL")
    return _tls(ctx, ctx.args.url)


def _origin(ctx: Context, key: str) -> str:
    try:
        return str(ctx.settings.origin(key))
    except (KeyError, AttributeError):
        return "default"


def _tls(ctx: Context, url: str) -> int:
    from installer.app import build_http_config, build_trust_config
    from installer.http import select_proxy
    from installer.trust import CertInfo, diagnose

    if urlsplit(url).scheme != "https" or not urlsplit(url).hostname:
        raise UsageError(f"inst debug tls needs an https:// URL, got {redact_url(url)}")
    trust = build_trust_config(ctx.settings)
    http = build_http_config(ctx.settings)
    policy = trust.policy_for(url)
    proxy = select_proxy(url, http.proxy, http.no_proxy)
    out = ctx.out
    out.result(f"url: {redact_url(url)}")
    out.result("policy:")
    out.result(f"  trust = {policy.trust} ({policy.origin('trust')})"
               + ("  [not used: cert replaces these roots]" if policy.cert else ""))
    out.result(f"  cert = {policy.cert or '(none)'}"
               + (f" ({policy.origin('cert')})" if policy.cert else ""))
    out.result(f"  client-cert = {policy.client_cert or '(none)'}"
               + (f" ({policy.origin('client-cert')})" if policy.client_cert else ""))
    if proxy:
        out.result(f"  proxy = {redact_url(proxy)} ({_origin(ctx, 'proxy')})")
    else:
        out.result("  proxy = (none)")
    if trust.is_trusted(url):
        host = urlsplit(url).hostname
        out.warn(f"certificate verification is off for {host} "
                 f"(trusted-host, set by {_origin(ctx, 'trusted-host')})")
        out.result(f"  trusted-host: {host} (verification is skipped)")
    try:
        diag = diagnose(url, trust, proxy=proxy, timeout=http.timeout)
    except (OSError, NetworkError) as exc:
        cause = exc.cause if isinstance(exc, NetworkError) else (exc.strerror or str(exc))
        raise NetworkError(url, f"could not connect ({cause})") from exc

    def show(title: str, chain: tuple[CertInfo, ...]) -> None:
        out.result(title)
        for i, cert in enumerate(chain):
            out.result(f"  {i}: subject: {cert.subject}")
            out.result(f"     issuer:  {cert.issuer}")
            out.result(f"     valid:   {cert.not_before} to {cert.not_after}")
            if cert.names:
                out.result(f"     names:   {', '.join(cert.names)}")

    show("server chain" + (" (through the proxy):" if proxy else ":"), diag.chain)
    if diag.direct_chain:
        show("server chain (direct, without the proxy):", diag.direct_chain)
    if diag.ok:
        out.result(f"verdict: OK, {diag.detail}" + (f" ({diag.status_line})"
                                                    if diag.status_line else ""))
        return EXIT_OK
    out.result(f"verdict: FAILED, {diag.detail}")
    if diag.fix:
        out.result(f"fix: {diag.fix}")
    return EXIT_FAILED
