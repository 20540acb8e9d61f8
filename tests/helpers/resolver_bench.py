"""Time resolve() on a synthetic ~50-project in-memory index (warm: pages and metadata in memory).

    PYTHONPATH=. python -m tests.helpers.resolver_bench [--projects 50] [--versions 8] [--runs 20]

Every project has several versions whose dependencies tighten with the version, so the
resolver sees a web of ranges (and some backtracking), like a real application's tree.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

from installer.models import Link, MemoryIndex
from installer.reqfile import parse_args
from installer.resolver import ResolveOptions, resolve
from tests.helpers.resolver_index import build_index, make_env


def synthetic_index(projects: int, versions: int, seed: int = 7) -> dict[str, list[Any]]:
    """``{name: [version entries]}``: project i depends on i+1 and up to 3 more j > i."""
    rng = random.Random(seed)
    names = [f"pkg{i:03d}" for i in range(projects)]
    spec: dict[str, list[Any]] = {}
    for i, name in enumerate(names):
        later = names[i + 1:]
        deps = later[:1] + rng.sample(later[1:], min(len(later) - 1, rng.randint(0, 3))) if (
            later) else []
        entries = []
        for v in range(1, versions + 1):
            requires = [f"{d}>={max(1, v - 3)}.0" for d in deps]
            if v == versions and deps:  # the newest release needs a newer dep than exists
                requires[0] = f"{deps[0]}>={versions + 1}.0"
            entries.append({"version": f"{v}.0", "requires": requires,
                            "tags": ["cp311-cp311-manylinux_2_17_x86_64", "py3-none-any"]})
        spec[name] = entries
    return spec


class UrlIndex(MemoryIndex):
    """MemoryIndex with metadata looked up by URL (MemoryIndex scans every file per call)."""

    def __init__(self, base: MemoryIndex) -> None:
        super().__init__(projects=base.projects)
        self.by_url = {link.url: meta for files in base.projects.values() for link, meta in files}

    def metadata(self, link: Link) -> bytes:
        return self.by_url[link.url]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--versions", type=int, default=8)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    index = UrlIndex(build_index(synthetic_index(args.projects, args.versions)))
    env = make_env()
    reqs = parse_args(["pkg000", "pkg001", "pkg002"])
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        result = resolve(reqs, [], index, env, ResolveOptions())
        times.append(time.perf_counter() - start)
    median = statistics.median(times) * 1000
    print(f"{len(result)} projects pinned; resolve() median {median:.1f} ms,"
          f" min {min(times) * 1000:.1f} ms over {args.runs} runs")


if __name__ == "__main__":
    main()
