"""A process that owns a real store and migrates a collection while a writer and a reader run.

Run as `python -m tests.dualwrite_kit DIR --ops N --until PHASE [...]`. It
owns DIR's embedded store and state DB (as an index's owner does) and, in
threads, applies N deterministic upserts and deletes to the collection
"src" through the one write path (`PointWriter`), advances the migration of
"src" to "dst" step by step under the same write lock, and queries the
collection reads go to, counting errors and empty answers. Killed at any
point (a failpoint, SIGKILL), it is run again with the same arguments and
resumes: the writer from the last batch it recorded (its ops are
idempotent), the migration from its row in the state DB.

The points are synthetic (meaning does not matter here): `expected(ops)`
is what the collection must hold after every op, to compare both sides with.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cidx.collections import Collections
from cidx.dualwrite import MigrationParts, Migrator, PointWriter
from cidx.fsutil import write_atomic
from cidx.parts import Models
from cidx.state import StateDB
from cidx.state.moves import MoveTable
from cidx.store import Nearest, PointData, SparseVec, StoreQuery, VectorStore
from cidx.store.edge import EdgeStore

DIM = 16
SEED_POINTS = 1500
ANCHORS = 200  # never deleted: a query always has something to find
POOL = 3000  # ids the ops pick from
OP_BATCH = 40
MODEL = "cidx-code4-minilm-l6-int8@128"

_NS = uuid.UUID("0b1e2c3d-4f50-4a61-8b72-9c8d7e6f5a41")


def pid(i: int) -> str:
    return str(uuid.uuid5(_NS, str(i)))


def point(i: int, version: int) -> PointData:
    rng = random.Random(i * 7919 + version)
    dense = [rng.uniform(-1, 1) for _ in range(DIM)]
    sparse = SparseVec(sorted(rng.sample(range(1000), 3)), [rng.random() + 0.1 for _ in range(3)])
    payload = {
        "path": f"f{i % 50}.py",
        "kind": "function",
        "symbol": f"s{i}",
        "text": f"v{version}",
    }
    return PointData(pid(i), dense, sparse, payload)


def op(seed: int, k: int) -> tuple[str, int]:
    """The k-th op: ("upsert" | "delete", point number)."""
    rng = random.Random(seed * 1_000_003 + k)
    i = rng.randrange(POOL)
    if i >= ANCHORS and rng.random() < 0.3:
        return "delete", i
    return "upsert", i


def expected(seed: int, ops: int) -> dict[str, PointData]:
    state = {pid(i): point(i, 0) for i in range(SEED_POINTS)}
    for k in range(ops):
        kind, i = op(seed, k)
        if kind == "delete":
            state.pop(pid(i), None)
        else:
            state[pid(i)] = point(i, k + 1)
    return state


def read_all(store: VectorStore, name: str) -> dict[str, PointData] | None:
    """Every point of `name` (None: there is no such collection)."""
    if not store.collection_exists(name):
        return None
    found: dict[str, PointData] = {}
    offset: str | None = None
    while True:
        page, offset = store.page(name, offset=offset, limit=1024)
        found.update((p.id, p) for p in page)
        if offset is None:
            return found


def query_loop(
    store: VectorStore, reads: Callable[[], str], stop: threading.Event, report: dict[str, Any]
) -> None:
    """Query the collection `reads()` names until `stop`, counting queries,
    errors and empty answers into `report`."""
    rng = random.Random(5)
    while not stop.is_set():
        query = StoreQuery(
            (Nearest("dense", [rng.uniform(-1, 1) for _ in range(DIM)], 5),), 5, with_payload=False
        )
        name = reads()
        try:
            try:
                hits = store.query(name, query)
            except Exception:
                # As the engine's search does: a cleanup dropped the collection
                # between naming it and querying it; reads moved on meanwhile.
                if reads() == name:
                    raise
                hits = store.query(reads(), query)
            report["empty"] += not hits
        except Exception as exc:
            report["errors"].append(repr(exc))
        report["queries"] += 1
        time.sleep(0.002)  # a steady query load, not a busy loop


def write_ops(
    writer: PointWriter,
    lock: threading.RLock,
    seed: int,
    done: int,
    ops: int,
    progress_file: Path,
    before: Callable[[int], None] = lambda _k: None,
) -> None:
    """Apply ops `done`..`ops` to "src" through `writer`, a batch at a time under
    `lock`, recording how far it got (`before(k)` runs before the batch at k)."""
    k = done
    while k < ops:
        before(k)
        last: dict[int, tuple[str, int]] = {}
        for j in range(k, min(k + OP_BATCH, ops)):
            kind, i = op(seed, j)
            last[i] = (kind, j)
        ups = [point(i, j + 1) for i, (kind, j) in last.items() if kind == "upsert"]
        dels = [pid(i) for i, (kind, _j) in last.items() if kind == "delete"]
        with lock:
            writer.upsert("src", ups)
            writer.delete("src", dels)
        k = min(k + OP_BATCH, ops)
        write_atomic(progress_file, str(k), durable=False)  # survives SIGKILL
        time.sleep(0.001)  # let the migration's steps take the lock too


def open_parts(folder: Path) -> tuple[EdgeStore, StateDB, Collections]:
    store = EdgeStore(folder / "store")
    db = StateDB(folder / "state.db")
    return store, db, Collections(store, db, DIM, "src", model=MODEL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--until", default="cutover")  # validated | cutover | done | rolled_back
    args = parser.parse_args()
    folder: Path = args.folder
    store, db, collections = open_parts(folder)
    lock = threading.RLock()
    models = Models(128)
    writer = PointWriter(collections, models)
    migrator = Migrator(MigrationParts(collections, models, lambda: lock))
    table = MoveTable(db)
    if not store.collection_exists("src"):
        store.create_collection("src", DIM)
        store.upsert("src", [point(i, 0) for i in range(SEED_POINTS)])
    progress_file = folder / "writer-progress"
    done = int(progress_file.read_text()) if progress_file.exists() else 0
    report: dict[str, Any] = {"queries": 0, "errors": [], "empty": 0}
    stop = threading.Event()

    def write() -> None:
        write_ops(writer, lock, args.seed, done, args.ops, progress_file)

    reader = threading.Thread(
        target=query_loop, args=(store, lambda: collections.resolve("src"), stop, report)
    )
    reader.start()
    writing = threading.Thread(target=write)
    writing.start()
    try:
        if not table.all():
            migrator.start("src", "dst", batch=args.batch, retain_seconds=3600.0)
        move = migrator.run()
        if args.until != "validated" and move is not None and move.phase == "validated":
            migrator.cutover()
        writing.join()
        move = migrator.run()  # the outbox drained
        if args.until == "done" and move is not None and move.phase in ("cutover", "cleanup"):
            migrator.cleanup(force=True)
        if args.until == "rolled_back" and move is not None and move.active:
            migrator.rollback()
    finally:
        writing.join()
        stop.set()
        reader.join()
    final = table.all()[-1]
    report["phase"] = final.phase
    report["detail"] = final.detail
    report["reads"] = collections.resolve("src")
    report["queued"] = table.outbox_size(final.id)
    (folder / "report.json").write_text(json.dumps(report))
    store.close()
    db.close()


if __name__ == "__main__":
    main()
