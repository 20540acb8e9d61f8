"""Exact host matching for ``trusted-host`` entries, shared by trust and http (which must not
import each other's policy code)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit


def host_is_trusted(url: str, trusted_hosts: Sequence[str]) -> bool:
    """Exact match of *url*'s host or host:port against *trusted_hosts* (no suffix tricks)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        return False
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    shown = f"[{host}]" if ":" in host else host
    names = {host, shown, f"{shown}:{port}"}
    return any(entry.strip().lower() in names for entry in trusted_hosts)
