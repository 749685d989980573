"""Walker test helpers: write files into a tree and walk it."""

from __future__ import annotations

from pathlib import Path

from cidx.ignore import IgnoreRules
from cidx.walk import WalkResult, walk_project

MB = 1024 * 1024


def write(root: Path, rel: str, text: str = "x\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def walk(root: Path, *, max_file_size: int = MB, rules: IgnoreRules | None = None) -> WalkResult:
    return walk_project(root, max_file_size=max_file_size, rules=rules)


def rels(root: Path, *, max_file_size: int = MB, rules: IgnoreRules | None = None) -> list[str]:
    return [f.rel for f in walk(root, max_file_size=max_file_size, rules=rules).files]


def skips(result: WalkResult) -> dict[str, str]:
    return {s.rel: s.reason for s in result.skipped}
