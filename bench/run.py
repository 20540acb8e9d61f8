#!/usr/bin/env python3
"""Benchmark inst against pip and uv on one local HTTPS index, side by side.

    python bench/run.py [--sets a,b,c] [--runs 5] [--scenarios cold,warm,noop,resolve]

One command does everything: a tools venv with pip and uv (and inst from this checkout), the
wheel corpus (``pip download --only-binary=:all:``, once), a static index built with
../shared/bench/make-index.py, nginx over TLS from ../shared/bench/serve-index, then each
scenario with the tools alternating run by run. Venvs and caches live on tmpfs (/dev/shm) so
deleting the previous run's trees does not skew later runs. Prints medians, min-max and the
ratios inst/uv and inst/pip; ``--markdown FILE`` writes the table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
# make-index.py and serve-index: ../shared/bench next to the checkout, or --shared DIR.
SHARED = ROOT.parent / "shared" / "bench"
SETS = {
    "a": ["requests"],
    "b": ["flask", "django", "fastapi", "black", "pytest", "rich", "httpx", "sqlalchemy",
          "pydantic", "click", "jinja2", "boto3", "attrs"],
    "c": ["jupyterlab", "pandas", "matplotlib", "scikit-learn"],
}
TOOLS = ("inst", "uv", "pip")
PORT = 8643


def use_shared(folder: Path) -> None:
    """Take the index tools from *folder*; fail early and clearly when they are not there."""
    global SHARED
    if not (folder / "make-index.py").is_file() or not (folder / "serve-index").is_file():
        raise SystemExit(f"bench: no make-index.py and serve-index in {folder}; "
                         "pass --shared DIR (the workplace's shared/bench folder)")
    SHARED = folder


def sh(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a command, failing loudly with its output."""
    proc = subprocess.run(cmd, text=True, capture_output=True, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc  # type: ignore[no-any-return]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment minus every setting that would skew a tool (configs, CA vars, proxies)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "INST_")) and not k.endswith(("_PROXY", "_proxy"))
           and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
                         "CURL_CA_BUNDLE", "VIRTUAL_ENV")}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "UV_NO_CONFIG": "1", "INST_NO_CONFIG": "1"})
    env.update(extra or {})
    return env


def tools_venv() -> Path:
    """A venv with pip, uv, and inst installed from this checkout."""
    venv = WORK / "tools"
    if not (venv / "bin" / "uv").exists():
        sh([sys.executable, "-m", "venv", str(venv)])
        sh([str(venv / "bin" / "pip"), "install", "-q", "--upgrade", "pip", "uv"])
    sh([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)])
    return venv


def corpus(name: str, tools: Path) -> Path:
    """Download the wheels of one requirement set once."""
    dest = WORK / f"wheels-{name}"
    if not (dest / ".complete").exists():
        dest.mkdir(parents=True, exist_ok=True)
        sh([str(tools / "bin" / "pip"), "download", "-q", "--only-binary=:all:", "-d", str(dest),
            *SETS[name]])
        (dest / ".complete").touch()
    return dest


def build_index(names: list[str], tools: Path) -> tuple[str, Path]:
    """One index with every set's wheels, served by nginx over TLS; returns (URL, CA path)."""
    allw = WORK / "wheels-all"
    allw.mkdir(parents=True, exist_ok=True)
    for name in names:
        for whl in corpus(name, tools).glob("*.whl"):
            target = allw / whl.name
            if not target.exists():
                os.link(whl, target)
    index, state = WORK / "index", WORK / "state"
    shutil.rmtree(index, ignore_errors=True)
    sh([sys.executable, str(SHARED / "make-index.py"), str(allw), str(index)])
    # The pages are rebuilt on every benchmark run, but their content only changes when the
    # corpus does: date them (nginx's Last-Modified) to when the corpus was downloaded, as a
    # real index dates a page by its last upload. Otherwise every page looks seconds old and
    # heuristic freshness (10% of that age) expires within the run.
    stamp = max((WORK / f"wheels-{n}" / ".complete").stat().st_mtime for n in names)
    for path in index.rglob("*"):
        os.utime(path, (stamp, stamp), follow_symlinks=False)
    subprocess.run([str(SHARED / "serve-index"), "--stop", str(state)], check=False)
    sh([str(SHARED / "serve-index"), str(index), str(PORT), str(state)])
    return f"https://127.0.0.1:{PORT}/simple/", state / "ca.pem"


def command(tool: str, tools: Path, venv: Path, cache: Path, url: str, ca: Path,
            reqs: list[str], dry_run: bool) -> tuple[list[str], dict[str, str]]:
    """The install command line for one tool, configured the way its users would."""
    bin_ = tools / "bin"
    if tool == "inst":
        cmd = [str(bin_ / "inst"), "install", "-q", "--python", str(venv), "--index-url", url,
               "--cert", str(ca), "--cache-dir", str(cache), *reqs]
        env = clean_env()
    elif tool == "uv":
        cmd = [str(bin_ / "uv"), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
               "--index-url", url, "--cache-dir", str(cache), *reqs]
        env = clean_env({"SSL_CERT_FILE": str(ca)})
    else:
        cmd = [str(venv / "bin" / "pip"), "install", "-q", "--no-compile", "--index-url", url,
               "--cert", str(ca), "--cache-dir", str(cache), *reqs]
        env = clean_env()
    if dry_run:
        cmd.insert(cmd.index("install") + 1, "--dry-run")
    return cmd, env


def fresh_venv(path: Path, with_pip: bool) -> None:
    """A new venv (with pip only for pip's own runs, as its users have)."""
    shutil.rmtree(path, ignore_errors=True)
    args = [sys.executable, "-m", "venv", str(path)]
    if not with_pip:
        args.insert(3, "--without-pip")
    sh(args)


def timed(cmd: list[str], env: dict[str, str], check: bool = True,
          cwd: Path | None = None) -> float:
    """Wall time of one run, after a sync so earlier writes don't land on this one."""
    os.sync()
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    elapsed = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def scenario(kind: str, tool: str, tools: Path, url: str, ca: Path, reqs: list[str],
             scratch: Path) -> float:
    """Prepare the state a scenario needs (untimed), then time the tool once."""
    venv, cache = scratch / f"venv-{tool}", scratch / f"cache-{tool}"
    if kind == "cold":
        shutil.rmtree(cache, ignore_errors=True)
    if kind != "noop":
        fresh_venv(venv, with_pip=tool == "pip")
    cmd, env = command(tool, tools, venv, cache, url, ca, reqs, dry_run=kind == "resolve")
    if kind in ("warm", "resolve") and not cache.exists():
        subprocess.run(cmd, env=env, capture_output=True)  # fill the cache
        fresh_venv(venv, with_pip=tool == "pip")
    if kind == "noop":
        if not venv.exists():
            fresh_venv(venv, with_pip=tool == "pip")
        subprocess.run(cmd, env=env, capture_output=True)  # install once, untimed
    return timed(cmd, env)


def startup(tools: Path, runs: int, cwd: Path) -> dict[str, list[float]]:
    """Start-up floor and the tools' trivial commands, run in *cwd*: a folder without a
    pyproject.toml (this checkout's own pyproject declares an ``inst`` script, so inst
    would parse it looking for [tool.inst])."""
    b = tools / "bin"
    cmds = {
        "python -c pass": [str(b / "python"), "-c", "pass"],
        "inst --version": [str(b / "inst"), "--version"],
        "inst config get global.cert": [str(b / "inst"), "config", "get", "global.cert"],
        "inst install --help": [str(b / "inst"), "install", "--help"],
        "pip --version": [str(b / "pip"), "--version"],
        "uv --version": [str(b / "uv"), "--version"],
    }
    results: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            results[name].append(timed(cmd, clean_env(), check=False, cwd=cwd))
    return results


def fmt(samples: list[float]) -> str:
    """median (min-max) in seconds."""
    return f"{statistics.median(samples):.3f} ({min(samples):.3f}-{max(samples):.3f})"


def main() -> None:
    """Parse arguments, run everything, print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sets", default="a,b")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scenarios", default="cold,warm,noop,resolve")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--shared", type=Path, default=SHARED,
                    help="folder with make-index.py and serve-index (default: %(default)s)")
    args = ap.parse_args()
    use_shared(args.shared)
    WORK.mkdir(parents=True, exist_ok=True)
    tools = tools_venv()
    names = args.sets.split(",")
    url, ca = build_index(names, tools)
    scratch = Path("/dev/shm/inst-bench") if Path("/dev/shm").is_dir() else WORK / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    rows: list[str] = ["| set | scenario | " + " | ".join(args.tools.split(",")) +
                       " | inst/uv | inst/pip |", "|---|---|---|---|---|---|---|"]
    for name in names:
        for kind in args.scenarios.split(","):
            res: dict[str, list[float]] = {t: [] for t in args.tools.split(",")}
            for _ in range(args.runs):
                for tool in res:
                    res[tool].append(scenario(kind, tool, tools, url, ca, SETS[name], scratch))
            med = {t: statistics.median(v) for t, v in res.items()}
            ratio_uv = f"{med['inst'] / med['uv']:.2f}" if "uv" in med and "inst" in med else "-"
            ratio_pip = f"{med['inst'] / med['pip']:.2f}" if "pip" in med and "inst" in med else "-"
            row = f"| {name} | {kind} | " + " | ".join(fmt(v) for v in res.values())
            rows.append(row + f" | {ratio_uv} | {ratio_pip} |")
            print(rows[-1], flush=True)
    rows += ["", "| command | median (min-max) s |", "|---|---|"]
    for cmd, samples in startup(tools, max(args.runs, 10), scratch).items():
        rows.append(f"| `{cmd}` | {fmt(samples)} |")
    table = "\n".join(rows)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    subprocess.run([str(SHARED / "serve-index"), "--stop", str(WORK / "state")], check=False)


if __name__ == "__main__":
    main()
