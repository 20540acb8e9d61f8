"""Shared fixtures. The autouse ``clean_env`` keeps the developer's machine out of every test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.models import Environment

SCRUB_PREFIXES = ("INST_", "PIP_", "UV_", "XDG_")
SCRUB_NAMES = {
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "VIRTUAL_ENV",
    "VISUAL", "EDITOR", "NETRC",
}


def _scrubbed(name: str) -> bool:
    upper = name.upper()
    return (
        upper.startswith(SCRUB_PREFIXES) or upper in SCRUB_NAMES or upper.endswith("_PROXY")
    )


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scrub INST_*, TLS and proxy variables, XDG_*, and point HOME at a fresh temp folder."""
    for name in list(os.environ):
        if _scrubbed(name):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    # Site config: an empty folder, so the machine's /etc/xdg cannot leak in.
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(home / "etc-xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return home


@pytest.fixture
def run_inst(tmp_path: Path) -> Iterator[object]:
    """Run ``python -m installer ARGS`` in a subprocess; returns CompletedProcess (text)."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        return subprocess.run(
            [sys.executable, "-m", "installer", *args],
            cwd=cwd or tmp_path, env=full_env, input=input, text=True,
            capture_output=True, timeout=timeout,
        )

    yield run


@pytest.fixture(scope="session")
def venv_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty venv, made once per session; tests take clones of it (``env``)."""
    from tests.helpers.install_env import make_venv

    root = tmp_path_factory.mktemp("tpl") / "venv"
    make_venv(root)
    return root


@pytest.fixture
def env(venv_template: Path, tmp_path: Path) -> Environment:
    """A venv of the test's own (a clone of ``venv_template``)."""
    from tests.helpers.install_env import clone_venv

    return clone_venv(venv_template, tmp_path / "venv")
