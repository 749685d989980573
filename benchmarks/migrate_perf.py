"""Collection migration: backfill speed, dual-write overhead, query latency meanwhile.

    nice -n 10 python benchmarks/migrate_perf.py [--points 20000] [--batch N] [--project DIR]

Each figure beside a baseline measured in the same run:

  copy backfill     points/s of a copy migration's backfill (prepare, backfill
                    batches, validate) of a synthetic collection of 384-d dense
                    + sparse vectors + code-sized payloads on the embedded
                    store, in batches of the default size (or --batch);
                    baseline: `copy_collection`, a plain copy (page, upsert)
                    with no migration machinery. Target: >= 5,000 points/s.
  dual-write        chunks/s of indexing a real project with every vector
                    from the embedding cache (so no model time), without a
                    migration and with a copy migration's dual writes on, in
                    alternating rounds (the machine's load drifts): a
                    re-index of every file (what an index-format change or a
                    branch switch does: every point written again), and a
                    full rebuild (`cidx index --clear`, which also empties
                    and re-creates both collections). Target: overhead < 10 %.
                    And the same alternating rounds for indexing new code,
                    where the model embeds every chunk (a copy of some of the
                    project's files with every definition renamed, so that
                    nothing comes from the cache): what indexing costs a user
                    while a migration runs.
  query p50         in-process hybrid query p50 before a migration and while
                    its backfill runs in the owner's background worker.
                    Target: within 1.2x.

The project indexed is this repository's `src/` (copied to a temporary
folder) unless --project names another folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cidx.collections import Collections, copy_collection
from cidx.dualwrite import DEFAULT_BATCH, MigrationParts, Migrator
from cidx.engine import Engine
from cidx.indexer import META_FORMAT
from cidx.messages import QueryRequest
from cidx.owner.lock import OwnerLock
from cidx.parts import Models
from cidx.project import ProjectPaths
from cidx.state import StateDB
from cidx.state.moves import CollectionMigration
from cidx.store import PointData, SparseVec
from cidx.store.edge import EdgeStore

DIM = 384
QUERIES = [
    "retry a failed request",
    "parse the config file",
    "open the index and take the owner lock",
    "embed texts through the cache",
    "copy a collection to another store",
    "render status as json",
    "walk the project tree and skip ignored files",
    "chunk markdown by section",
]


def synthetic(n: int, seed: int = 7) -> list[PointData]:
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(n, DIM)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    points = []
    for i in range(n):
        terms = sorted({int(t) for t in rng.integers(0, 30_000, 40)})
        points.append(
            PointData(
                str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i)),
                dense[i].tolist(),
                SparseVec(terms, [1.0] * len(terms)),
                {
                    "path": f"src/pkg/module_{i % 500}.py",
                    "language": "python",
                    "kind": "function",
                    "symbol": f"function_{i}",
                    "start_line": 1,
                    "end_line": 30,
                    "text": "x = compute(value)\n" * 40,
                },
            )
        )
    return points


def copy_and_validate(migrator: Migrator, move: CollectionMigration) -> tuple[float, float]:
    """Step `move` through its backfill, then its validation: (seconds of each)."""
    started = time.perf_counter()
    while move.phase in ("prepare", "backfill"):
        migrator.step()
        move = migrator.active() or move
    backfilled = time.perf_counter()
    move = migrator.run() or move
    assert move.phase == "validated", move
    return backfilled - started, time.perf_counter() - backfilled


class Clock:
    """Wall and CPU time (this process's, every thread) since it was made: on a
    machine shared with other jobs, CPU time is the steadier measure of cost."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rates(self, n: float) -> tuple[float, float]:
        """`n` per wall second and per CPU second."""
        return n / (time.perf_counter() - self.wall), n / (time.process_time() - self.cpu)


def bench_backfill(
    folder: Path, n: int, batch: int
) -> tuple[tuple[float, float], tuple[float, float], float]:
    """(copy_collection points/s, the backfill's points/s, each by wall and by
    CPU time; seconds to validate)."""
    store = EdgeStore(folder / "store")
    db = StateDB(folder / "state.db")
    try:
        store.create_collection("src", DIM)
        points = synthetic(n)
        for start in range(0, n, 512):
            store.upsert("src", points[start : start + 512])
        store.flush()
        clock = Clock()
        copy_collection(store, "src", store, "plain", DIM, batch=batch)
        plain = clock.rates(n)
        lock = threading.RLock()
        collections = Collections(store, db, DIM, "src", model="cidx-code4-minilm-l6-int8@128")
        migrator = Migrator(MigrationParts(collections, Models(128), lambda: lock))
        clock = Clock()
        move = migrator.start("src", "dst", batch=batch)
        while move.phase in ("prepare", "backfill"):
            migrator.step()
            move = migrator.active() or move
        migrated = clock.rates(n)
        backfilled = time.perf_counter()
        move = migrator.run() or move
        validated = time.perf_counter()
        assert move.phase == "validated", move
        return plain, migrated, validated - backfilled
    finally:
        store.close()
        db.close()


def _timed_sync(engine: Engine, *, clear: bool) -> tuple[float, float]:
    """Chunks/s (wall, CPU) of a full rebuild (`clear`) or of a re-index of every file."""
    if not clear:
        engine.manifest.set_mark(META_FORMAT, "an older format")  # every file again
    clock = Clock()
    summary = engine.sync(clear=clear)
    rates = clock.rates(summary.chunks_reused)
    assert summary.chunks_embedded == 0, "every vector should come from the cache"
    return rates


def _new_code(root: Path, tag: str, files: int) -> Path:
    """`files` of the project's Python files copied into a new folder, every
    definition renamed by `tag`: each chunk's text is new to the cache."""
    folder = root / f"new_{tag}"
    folder.mkdir()
    sources = sorted(
        p for p in root.rglob("*.py") if not p.relative_to(root).parts[0].startswith("new_")
    )[:files]
    for i, path in enumerate(sources):
        text = path.read_text(encoding="utf-8")
        text = text.replace("def ", f"def {tag}_").replace("class ", f"class {tag.upper()}")
        (folder / f"{i:03d}_{path.name}").write_text(text, encoding="utf-8")
    return folder


def _timed_new_code(engine: Engine, tag: str, files: int) -> tuple[float, float]:
    """Chunks/s (wall, CPU) of indexing new code, the model embedding it; the
    code is removed again (untimed) afterwards."""
    folder = _new_code(engine.paths.root, tag, files)
    clock = Clock()
    summary = engine.sync()
    rates = clock.rates(summary.chunks_embedded + summary.chunks_reused)
    assert summary.chunks_embedded > 0, "new code should be embedded"
    shutil.rmtree(folder)
    engine.sync()
    return rates


def _query_times(
    engine: Engine, rounds: int, while_: Callable[[], bool] = lambda: True
) -> list[float]:
    times = []
    for _ in range(rounds):
        for text in QUERIES:
            if not while_():
                return times
            started = time.perf_counter()
            engine.search_batch([QueryRequest(text, limit=10)])
            times.append(time.perf_counter() - started)
    return times


def _copying(engine: Engine) -> bool:
    move = engine.migrator.active()
    return move is not None and move.phase == "backfill"


def bench_project(root: Path, repeats: int, new_files: int) -> dict[str, float]:
    paths = ProjectPaths(root)
    with OwnerLock(paths, "bench"):
        engine, _ = Engine.open(paths)
        try:
            engine.long_lived = True
            engine.sync()  # embeds once: the timed syncs reuse the cache
            source = engine.collection
            rounds: dict[str, list[tuple[float, float]]] = {
                k: [] for k in ("plain", "dual", "plain_c", "dual_c", "plain_e", "dual_e")
            }
            for i in range(repeats):
                rounds["plain"].append(_timed_sync(engine, clear=False))
                rounds["plain_c"].append(_timed_sync(engine, clear=True))
                if new_files:
                    rounds["plain_e"].append(_timed_new_code(engine, f"p{i}", new_files))
                engine.migrator.start(source, f"bench-target-{i}")
                engine.migrator.run()
                rounds["dual"].append(_timed_sync(engine, clear=False))
                rounds["dual_c"].append(_timed_sync(engine, clear=True))
                if new_files:
                    rounds["dual_e"].append(_timed_new_code(engine, f"d{i}", new_files))
                engine.migrator.rollback()
            _query_times(engine, 1)  # warm up
            before = _query_times(engine, 5)
            # Query latency while the backfill runs in the owner's worker (small
            # batches, so it lasts as long as the queries).
            engine.migrator.start(source, "bench-target-q", batch=32)
            engine.migrator.start_worker()
            during = _query_times(engine, 5, lambda: _copying(engine))
            engine.migrator.stop_worker()
            return {
                "points": float(engine.store.count(source)),
                **{k: statistics.median(w for w, _ in v) for k, v in rounds.items() if v},
                **{f"{k}_cpu": statistics.median(c for _, c in v) for k, v in rounds.items() if v},
                "before": statistics.median(before),
                "during": statistics.median(during) if during else float("nan"),
                "during_n": float(len(during)),
            }
        finally:
            engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--project", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--new-files", type=int, default=20, help="files of new code per round (0: none)"
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"date: {started}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ.setdefault("CIDX_DATA_DIR", str(folder / "data"))
        plain, migrated, validating = bench_backfill(folder / "backfill", args.points, args.batch)
        print(
            f"\ncopy backfill of {args.points:,} synthetic points (384-d + sparse + payload), "
            f"batches of {args.batch}"
        )
        print("                               wall points/s       CPU points/s")
        print(f"  copy_collection (baseline)   {plain[0]:10,.0f}        {plain[1]:10,.0f}")
        print(
            f"  migration backfill           {migrated[0]:10,.0f} ({migrated[0] / plain[0]:.2f}x)"
            f" {migrated[1]:10,.0f} ({migrated[1] / plain[1]:.2f}x)"
        )
        print(f"  then validation              {validating:10.2f} s")
        print(f"  target >= 5,000 points/s: {'met' if migrated[0] >= 5000 else 'NOT met'}")

        root = folder / "project"
        shutil.copytree(args.project or Path(__file__).resolve().parent.parent / "src", root)
        figures = bench_project(root, args.repeats, args.new_files)
        print(
            f"\nindexing from the embedding cache ({figures['points']:,.0f} chunks; medians of "
            f"{args.repeats} alternating rounds), target overhead < 10 %"
        )
        for label, plain_key, dual_key in (
            ("re-index of every file", "plain", "dual"),
            ("full rebuild (--clear)", "plain_c", "dual_c"),
        ):
            print(f"  {label}                wall chunks/s   CPU chunks/s")
            print(
                f"    no migration (baseline)    {figures[plain_key]:10,.0f}"
                f"      {figures[plain_key + '_cpu']:10,.0f}"
            )
            print(
                f"    dual writes on             {figures[dual_key]:10,.0f}"
                f"      {figures[dual_key + '_cpu']:10,.0f}"
            )
            wall = 1 - figures[dual_key] / figures[plain_key]
            cpu = 1 - figures[dual_key + "_cpu"] / figures[plain_key + "_cpu"]
            print(f"    overhead {wall:.1%} by wall time, {cpu:.1%} by CPU time")
        if "plain_e" in figures:
            print(
                f"\nindexing new code ({args.new_files} files a round, the model embedding "
                "every chunk), target overhead < 10 %"
            )
            print("                               wall chunks/s   CPU chunks/s")
            print(
                f"    no migration (baseline)    {figures['plain_e']:10,.1f}"
                f"      {figures['plain_e_cpu']:10,.1f}"
            )
            print(
                f"    dual writes on             {figures['dual_e']:10,.1f}"
                f"      {figures['dual_e_cpu']:10,.1f}"
            )
            wall = 1 - figures["dual_e"] / figures["plain_e"]
            cpu = 1 - figures["dual_e_cpu"] / figures["plain_e_cpu"]
            print(f"    overhead {wall:.1%} by wall time, {cpu:.1%} by CPU time")
        ratio = figures["during"] / figures["before"]
        print("\nhybrid query p50, in process")
        print(f"  before a migration           {figures['before'] * 1000:8.1f} ms")
        print(f"  during its backfill          {figures['during'] * 1000:8.1f} ms  ({ratio:.2f}x)")
        print(f"  ({figures['during_n']:.0f} queries answered while the backfill ran)")
        print("  target within 1.2x")
        print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
