"""Test helpers: open a project's index in-process and read back its store."""

from __future__ import annotations

import contextlib
import random
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cidx.engine import Engine
from cidx.messages import IndexSummary
from cidx.owner.lock import OwnerLock
from cidx.project import ProjectPaths
from cidx.state import StateDB


@contextlib.contextmanager
def opened(root: Path) -> Iterator[Engine]:
    """The project's engine, owned by this test for the duration."""
    paths = ProjectPaths(root)
    with OwnerLock(paths, "test"):
        engine, _created = Engine.open(paths)
        try:
            yield engine
        finally:
            engine.close()


def full_snapshot(root: Path) -> dict[str, dict[str, Any]]:
    """Every point in the project's store: id → full payload."""
    with opened(root) as engine:
        ids = [pid for pid, _ in engine.store.scroll(engine.collection)]
        return {h.id: h.payload for h in engine.store.retrieve(engine.collection, ids)}


def sync(root: Path, **kwargs: Any) -> IndexSummary:
    with opened(root) as engine:
        return engine.sync(**kwargs)


def clean_rebuild(root: Path, scratch: Path) -> dict[str, dict[str, Any]]:
    """The store a fresh index of the same files has (in a copy of the tree).

    Only the embedding cache is carried over (vectors do not take part in
    the comparison, and re-embedding everything would only cost time): the
    config, manifest and store are built from nothing.
    """
    copy = scratch / "rebuild"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".code-indexer"), symlinks=True)
    source = ProjectPaths(root).state_db
    if source.exists():
        StateDB(ProjectPaths(copy).state_db).close()
        # closing(): a sqlite3 connection's own `with` commits but does not
        # close, and a connection closed later by the garbage collector
        # removes its WAL file under whoever is deleting this tree next.
        with contextlib.closing(sqlite3.connect(ProjectPaths(copy).state_db)) as conn, conn:
            conn.execute("ATTACH DATABASE ? AS src", (str(source),))
            conn.execute("INSERT INTO embeddings SELECT * FROM src.embeddings")
    sync(copy)
    return full_snapshot(copy)


WORDS = (
    "upload retry queue socket parse token cache render schema "
    "index buffer stream digest commit branch merge packet route"
).split()


def generated_module(seed: int, functions: int = 5) -> str:
    """A distinct, deterministic Python module with a few small functions."""
    rnd = random.Random(seed)
    out = [f'"""Module {seed}."""', "", "import os", ""]
    for f in range(functions):
        name = "_".join(rnd.sample(WORDS, 3)) + f"_{seed}_{f}"
        out += [
            "",
            f"def {name}(value, limit={rnd.randint(1, 99)}):",
            f'    """{" ".join(rnd.sample(WORDS, 6))}."""',
            f"    total = value * {rnd.randint(2, 9)}",
            "    if total > limit:",
            f"        return os.path.join({rnd.sample(WORDS, 2)!r})",
            "    return total",
        ]
    return "\n".join(out) + "\n"


def until(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {what}")


def registry_rows(table: str) -> list[tuple[Any, ...]]:
    """Every row of `table` in the global store's registry (none without one)."""
    from cidx.userdirs import data_dir

    path = data_dir() / "registry.db"
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(f"SELECT * FROM {table}").fetchall())
    finally:
        conn.close()
