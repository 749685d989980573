"""A process that moves a collection from the embedded store to a server and back, under load.

Run as `python -m tests.storagemove_kit DIR --ops N --until PHASE`. Like
`tests.dualwrite_kit` (whose synthetic points and ops it uses), it owns
its stores and state DB as an index's owner does, and runs a writer thread
(N upserts and deletes through the one write path, to the name "src"
throughout) and a reader thread (queries of whatever "src" reads from).
Here the two sides of each migration are in different stores: "src" in an
embedded store moves to "dst" in a Qdrant store (qdrant-client's local mode,
the server store's code), and with `--until back` on to "back" in the
embedded store again; half the writes wait for the second move to start.

The file `place` plays the project's config: the store the index opens
with, switched by the migrator's `on_switch` (as the engine switches the
config), so a run killed anywhere and started again opens where the
previous one left the reads.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

from cidx.collections import Collections
from cidx.dualwrite import MigrationParts, Migrator, PointWriter, SideStores
from cidx.fsutil import write_atomic
from cidx.parts import Models
from cidx.state import StateDB
from cidx.state.moves import CollectionMigration, MoveTable
from cidx.store import VectorStore
from cidx.store.edge import EdgeStore
from cidx.store.routed import RoutedStore
from cidx.store.server import ServerStore
from cidx.store.server_settings import ServerSettings
from tests import dualwrite_kit as kit

EDGE, SERVER = "edge", "server"


def open_store(folder: Path, key: str, server_dir: Path | None = None) -> VectorStore:
    if key == EDGE:
        return EdgeStore(folder / "store")
    return ServerStore.connect(ServerSettings(url=f"local:{server_dir or folder / 'server'}"))


def place(folder: Path) -> str:
    path = folder / "place"
    return path.read_text() if path.exists() else EDGE


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--ops", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--until", default="back")  # cutover | rolled_back | back
    # Where the server store keeps its folder (default: DIR/server).
    parser.add_argument("--server-dir", type=Path, default=None)
    args = parser.parse_args()
    folder: Path = args.folder
    routed = RoutedStore(open_store(folder, place(folder), args.server_dir))
    sides = SideStores(routed, place(folder), lambda key: open_store(folder, key, args.server_dir))
    db = StateDB(folder / "state.db")
    collections = Collections(routed, db, kit.DIM, "src", model=kit.MODEL)
    lock = threading.RLock()
    models = Models(128)

    def on_switch(move: CollectionMigration) -> None:
        key = move.target_store if move.cut_over else move.source_store
        if move.active and key is not None:
            write_atomic(folder / "place", key)

    writer = PointWriter(collections, models)
    migrator = Migrator(MigrationParts(collections, models, lambda: lock, None, on_switch, sides))
    table = MoveTable(db)
    migrator.follow()
    if not table.all() and not routed.collection_exists("src"):
        routed.create_collection("src", kit.DIM)
        routed.upsert("src", [kit.point(i, 0) for i in range(kit.SEED_POINTS)])
    progress_file = folder / "writer-progress"
    done = int(progress_file.read_text()) if progress_file.exists() else 0
    report: dict[str, Any] = {"queries": 0, "errors": [], "empty": 0}
    stop, second = threading.Event(), threading.Event()
    if args.until != "back":
        second.set()
    half = args.ops // 2

    def gate(k: int) -> None:
        if k >= half:
            second.wait()

    def write() -> None:
        kit.write_ops(writer, lock, args.seed, done, args.ops, progress_file, gate)

    plan = [("src", "dst", SERVER)]
    if args.until == "back":
        plan.append(("dst", "back", EDGE))
    reader = threading.Thread(
        target=kit.query_loop, args=(routed, lambda: collections.resolve("src"), stop, report)
    )
    reader.start()
    writing = threading.Thread(target=write)
    writing.start()
    try:
        for n, (source, target, key) in enumerate(plan):
            started = next((m for m in table.all() if m.target == target), None)
            if started is None:
                migrator.start(
                    source, target, batch=args.batch, retain_seconds=3600.0, target_store=key
                )
            if n == 1:
                second.set()
            if started is not None and not started.active:
                continue
            move = migrator.run()
            if move is not None and move.phase == "validated":
                migrator.cutover()
            if args.until == "rolled_back":
                writing.join()
                if migrator.run() is not None:
                    migrator.rollback()
            elif args.until == "back":
                if n == 1:
                    writing.join()
                move = migrator.run()  # the outbox drained
                if move is not None and move.phase in ("cutover", "cleanup"):
                    migrator.cleanup(force=True)
        writing.join()
        migrator.run()
    finally:
        second.set()
        writing.join()
        stop.set()
        reader.join()
    final = table.all()[-1]
    report["phase"] = final.phase
    report["reads"] = collections.resolve("src")
    report["place"] = place(folder)
    report["queued"] = table.outbox_size(final.id)
    (folder / "report.json").write_text(json.dumps(report))
    routed.close()
    sides.close()
    db.close()


if __name__ == "__main__":
    main()
