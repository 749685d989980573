"""The benchmark corpus: the source of a large published package, fetched once.

Django 5.2.19's wheel holds about 3,600 files (Python, templates, locale
files, static assets): a real project of the size the targets name. It is
downloaded with pip into `benchmarks/.cache/` on first use (the package
registry is the only network the benchmarks need) and unpacked from there.
"""

from __future__ import annotations

import ast
import os
import random
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(__file__).parent / ".cache"
PACKAGE = "Django==5.2.19"


def wheel() -> Path:
    CACHE.mkdir(exist_ok=True)
    found = sorted(CACHE.glob("[Dd]jango-5.2.19-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), PACKAGE],
            check=True,
        )
        found = sorted(CACHE.glob("[Dd]jango-5.2.19-*.whl"))
    return found[0]


def unpack(dest: Path) -> Path:
    """A fresh copy of the corpus at `dest` (the package, not its metadata)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with zipfile.ZipFile(wheel()) as zf:
        for name in zf.namelist():
            if ".dist-info/" not in name:
                zf.extract(name, dest)
    return dest


def queries(root: Path, n: int = 200, seed: int = 7) -> list[str]:
    """First sentences of docstrings in the corpus: realistic natural-language queries."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                doc = ast.get_docstring(node)
                if doc:
                    first = " ".join(doc.strip().split("\n\n")[0].split())
                    m = re.match(r"(.+?[.!?])(\s|$)", first)
                    text = (m.group(1) if m else first).strip()
                    if 4 <= len(text.split()) <= 30:
                        found.append(text)
    random.Random(seed).shuffle(found)
    return found[:n]


def chunk_texts(root: Path) -> list[str]:
    """The dense texts of every chunk of the corpus, as the index embeds them."""
    from cidx.chunking import chunk_file
    from cidx.representation import dense_text
    from cidx.walk import walk_project

    texts: list[str] = []
    for f in walk_project(root, max_file_size=1024 * 1024).files:
        try:
            text = (root / f.rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.extend(dense_text(f.rel, c) for c in chunk_file(f.rel, text).chunks)
    return texts


def private_home(scratch: Path) -> dict[str, str]:
    """An environment whose home is a new folder in `scratch`: no daemon, index
    or setting of the user's is touched."""
    home = scratch / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIDX_", "XDG_"))}
    env["HOME"] = str(home)
    return env
