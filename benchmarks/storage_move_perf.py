"""Moving an index to another store: the backfill's copy throughput, local -> server beside local -> global.

    nice -n 10 python benchmarks/storage_move_perf.py [--points 5000]

One synthetic collection (384-d dense + sparse vectors + code-sized
payloads) in an embedded store is moved with the migrator of `cidx storage
migrate` (prepare, backfill batches, validate) to:

  global           another embedded store (the user's global store): the
                   baseline every other figure is a ratio of
  server (memory)  the server store on qdrant-client's local mode in memory:
                   the client's own cost of building and sending points
  server (folder)  the same mode persisted in a folder (a `local:` URL), as
                   the tests and a laptop without a server use it

A real Qdrant server is not installed here; its figure lies between the
two server rows plus the network. Each row prints points/s of the backfill
and the seconds its validation took.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cidx.collections import Collections
from cidx.dualwrite import MigrationParts, Migrator, SideStores
from cidx.parts import Models
from cidx.state import StateDB
from cidx.store import VectorStore
from cidx.store.edge import EdgeStore
from cidx.store.routed import RoutedStore
from cidx.store.server import ServerStore
from cidx.store.server_settings import ServerSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from migrate_perf import DIM, copy_and_validate, synthetic


def bench_move(folder: Path, n: int, opener: Callable[[], VectorStore]) -> tuple[float, float]:
    """(backfill points/s, seconds to validate) of moving `n` points to `opener()`'s store."""
    folder.mkdir(parents=True)
    source = EdgeStore(folder / "local")
    source.create_collection("src", DIM)
    points = synthetic(n)
    for start in range(0, n, 512):
        source.upsert("src", points[start : start + 512])
    source.flush()
    routed = RoutedStore(source)
    sides = SideStores(routed, "local", lambda _key: opener())
    db = StateDB(folder / "state.db")
    try:
        collections = Collections(routed, db, DIM, "src", model="cidx-code4-minilm-l6-int8@128")
        lock = threading.RLock()
        migrator = Migrator(MigrationParts(collections, Models(128), lambda: lock, sides=sides))
        started = time.perf_counter()
        move = migrator.start("src", "dst", batch=512, target_store="other")
        _copying, validating = copy_and_validate(migrator, move)
        return n / (time.perf_counter() - started - validating), validating
    finally:
        routed.close()
        sides.close()
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=5_000)
    args = parser.parse_args()
    n = args.points
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"moving {n:,} synthetic points (384-d + sparse + payload) out of the local store\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        targets: list[tuple[str, Callable[[], VectorStore]]] = [
            ("global", lambda: EdgeStore(folder / "global")),
            ("server (memory)", ServerStore.in_memory),
            (
                "server (folder)",
                lambda: ServerStore.connect(ServerSettings(url=f"local:{folder / 'server'}")),
            ),
        ]
        baseline = 0.0
        for i, (name, opener) in enumerate(targets):
            rate, validating = bench_move(folder / f"move-{i}", n, opener)
            baseline = baseline or rate
            print(
                f"  local -> {name:16} {rate:9,.0f} points/s  ({rate / baseline:5.2f}x of "
                f"local -> global)  validation {validating:6.2f} s"
            )


if __name__ == "__main__":
    main()
