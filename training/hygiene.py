"""What the model must never be trained on: the benchmark corpora.

Three guards, each cheap and each catching what the others miss:
- by name: a package that is a benchmark corpus (public or development) is
  refused before it is downloaded, and again when pairs are mined;
- by path: vendored copies (`pip/_vendor/requests`, `vendor/`,
  `third_party/`, `node_modules/`) are never read, since they are other
  packages under another name;
- by content: when the benchmark corpora are built (benchmarks/.cache), a
  pair whose code shares most of its lines with any of them, or whose query
  is one of their queries, is dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path

# Every package a benchmark corpus is built from (benchmarks/_corpora.py holds
# the corpora; a test checks that each of them is named here). Names are
# compared normalised: lower case, "-", "_" and "." the same, npm scopes kept.
BENCHMARK_PACKAGES: dict[str, frozenset[str]] = {
    "python": frozenset({"requests", "jinja2", "click", "flask", "httpx", "attrs", "werkzeug"}),
    "javascript": frozenset({"axios", "commander", "ws", "express"}),
    "typescript": frozenset({"zod", "rxjs", "@tanstack/query-core", "immer"}),
    "go": frozenset(
        {
            "golang-github-spf13-cobra-dev",
            "golang-github-google-go-cmp-dev",
            "golang-github-gorilla-mux-dev",
            "golang-github-sirupsen-logrus-dev",
        }
    ),
    "rust": frozenset(
        {
            "librust-bytes-dev",
            "librust-itertools-dev",
            "librust-regex-syntax-dev",
            "librust-serde-json-dev",
            "librust-semver-dev",
        }
    ),
}

VENDOR_PARTS = frozenset(
    {"_vendor", "vendor", "vendored", "third_party", "thirdparty", "node_modules", "extern"}
)

# Lines this short or this common say nothing about where code came from.
_MIN_LINE = 24
CONTAMINATION_SHARE = 0.5


def norm_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip().lower())


_BLOCKED = {norm_name(n) for names in BENCHMARK_PACKAGES.values() for n in names}


def is_benchmark_package(name: str) -> bool:
    """True for a package that a benchmark corpus is built from, in any language."""
    return norm_name(name) in _BLOCKED


def is_benchmark_folder(folder: str) -> bool:
    """True for a fetched package folder `<name>-<version>` of a benchmark package."""

    def flat(text: str) -> str:  # "@tanstack/query-core" and "_tanstack_query-core" alike
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")

    name = flat(folder)
    return any(
        name.startswith(flat(blocked) + "-") and name[len(flat(blocked)) + 1 :][:1].isdigit()
        for blocked in _BLOCKED
    )


def is_vendored(rel_path: str) -> bool:
    return any(part.lower() in VENDOR_PARTS for part in Path(rel_path).parts[:-1])


def _norm_line(line: str) -> str:
    return " ".join(line.split())


def line_key(line: str) -> bytes | None:
    text = _norm_line(line)
    if len(text) < _MIN_LINE:
        return None
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def query_key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


class ContentFilter:
    """Lines and queries of the benchmark corpora, to check mined pairs against."""

    def __init__(self, lines: set[bytes], queries: set[str]) -> None:
        self.lines = lines
        self.queries = queries

    @classmethod
    def from_benchmarks(cls, bench_root: Path) -> ContentFilter:
        lines: set[bytes] = set()
        queries: set[str] = set()
        if bench_root.is_dir():
            for bench in sorted(p for p in bench_root.iterdir() if p.is_dir()):
                qfile = bench / "queries.json"
                if qfile.is_file():
                    queries.update(query_key(q["query"]) for q in json.loads(qfile.read_text()))
                for path in sorted((bench / "corpus").rglob("*")):
                    if path.is_file():
                        text = path.read_text(encoding="utf-8", errors="replace")
                        lines.update(k for k in map(line_key, text.splitlines()) if k)
        return cls(lines, queries)

    def contaminated(self, query: str, code_lines: Iterable[str]) -> bool:
        if query and query_key(query) in self.queries:
            return True
        keys = [k for k in map(line_key, code_lines) if k]
        if len(keys) < 2:
            return False
        shared = sum(1 for k in keys if k in self.lines)
        return shared / len(keys) >= CONTAMINATION_SHARE
