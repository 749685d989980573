"""A consistent copy of an open index, and how collections leave and come back.

`take_snapshot` is what the owner of an index does for `cidx backup`: hold
the index's writes (queries go on), flush the store, copy the config, the
state database (through SQLite's backup API) and every collection into a
folder beside the index — copy-on-write clones where the filesystem allows,
so the copy costs no more than metadata, and a hole-keeping copy elsewhere
— and let writes resume. The archive is
then written from that copy, with nothing held.

Holding the engine's `write_lock` is how writes pause: a sync or a live
batch waits for it, while searches never take it. The snapshot is one verb
(`SNAPSHOT`) handled inside the owner rather than a pause and a resume sent
by the backup, so a backup killed midway can never leave the owner paused.

A backup archive carries each collection's files under `collections/<name>/`,
tagged in its manifest with the format they are in; a restore hands them
back to the code that reads that format. That is the seam between
backup/restore and the store backend: one `CollectionFormat` per backend,
picked by `format_for_store` (backing up) and `format_named` (restoring).
Today there is one, `edge-shard`: a Qdrant Edge shard folder, copied by
`cidx.treecopy` and installed by a rename. A Qdrant server backend adds
another — `export` takes a server snapshot of the collection and downloads
it into the folder, `install` uploads it into a new collection and waits
for its point count — and the archive, `cidx.backup` and `cidx.restore` stay
as they are (an Edge shard can even be made from a server snapshot,
`EdgeShard.unpack_snapshot`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cidx.errors import ArchiveError, CidxError, UsageError
from cidx.failpoints import failpoint
from cidx.fsutil import disk_full, fsync_folder, is_no_space, private_dir
from cidx.messages import CollectionSnapshot, IndexSnapshot, SnapshotRequest
from cidx.pointsdump import POINTS, PointsFormat
from cidx.state.db import state_error
from cidx.storage import StorageLocation
from cidx.store import Nearest, StoreQuery, VectorStore
from cidx.treecopy import CopyReport, copy_tree, remove_tree

if TYPE_CHECKING:
    from cidx.archive import ArchivedCollection
    from cidx.engine import Engine

__all__ = [
    "EDGE_SHARD",
    "SAMPLE_HITS",
    "SCRATCH",
    "CollectionFormat",
    "EdgeShardFormat",
    "copy_method",
    "describe_collection",
    "format_for_store",
    "format_named",
    "sample_hits",
    "take_snapshot",
    "verify_collections",
]

EDGE_SHARD = "edge-shard"
# A snapshot's folder, inside the index folder: ".backup.<pid of the backup>.tmp",
# the shape `cidx doctor` knows as a temporary file, deleted once its pid is gone.
SCRATCH = re.compile(r"^\.backup\.([0-9]+)\.tmp$")
# Hits of the sample query a backup records and a restore repeats.
SAMPLE_HITS = 5


class CollectionFormat(Protocol):
    """Copies one backend's collections out, and installs them back."""

    name: str

    def export(
        self, store: VectorStore, location: StorageLocation, collection: str, into: Path
    ) -> CopyReport:
        """Write the collection's files into the new folder `into`.

        The caller has flushed the store and holds its writes for the
        duration, so what is copied is one consistent state.
        """
        ...

    def install(self, files: Path, location: StorageLocation, collection: str) -> None:
        """Make the exported `files` (a folder, consumed) the collection
        `collection` at `location`, which must not have it yet."""
        ...


class EdgeShardFormat:
    """A Qdrant Edge shard: its folder, as the engine wrote it."""

    name = EDGE_SHARD

    def export(
        self, store: VectorStore, location: StorageLocation, collection: str, into: Path
    ) -> CopyReport:
        # The shard stays open (closing it would break queries running
        # meanwhile): after a flush its files are complete, the page cache
        # shows every read the same bytes the engine maps, and nothing
        # writes them while the caller holds the index's writes.
        return copy_tree(location.collection_dir(collection), into)

    def install(self, files: Path, location: StorageLocation, collection: str) -> None:
        target = location.collection_dir(collection)
        if target.exists():
            raise ArchiveError(
                f"The collection {collection} already exists at {target}: a restore never "
                "writes over a collection. Remove it, or restore into another place."
            )
        location.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.rename(files, target)
        fsync_folder(location.folder)


_FORMATS: dict[str, CollectionFormat] = {EDGE_SHARD: EdgeShardFormat(), POINTS: PointsFormat()}


def format_for_store(location: StorageLocation) -> CollectionFormat:
    """The format the store at `location` backs its collections up in: a
    shard's folder for the embedded engine, its points for a server."""
    return _FORMATS[POINTS if location.server is not None else EDGE_SHARD]


def format_named(name: str) -> CollectionFormat:
    """The format an archive's manifest names; ArchiveError if this cidx cannot read it."""
    found = _FORMATS.get(name)
    if found is None:
        known = ", ".join(sorted(_FORMATS))
        raise ArchiveError(
            f"The backup holds a collection in the format {name!r}, which this cidx cannot "
            f"restore (it reads {known}). Restore it with the cidx that wrote it, or a newer one."
        )
    return found


# -- taking a snapshot -------------------------------------------------------


def take_snapshot(engine: Engine, request: SnapshotRequest) -> IndexSnapshot:
    """Copy the index into `request.into`, as it is at one instant.

    The folder must be a `SCRATCH` folder directly inside the index folder
    (on the index's filesystem, so that clones work); one left there by an
    earlier attempt of the same backup is replaced.
    """
    into = Path(request.into)
    index_dir = engine.paths.index_dir
    if into.parent != index_dir or SCRATCH.match(into.name) is None:
        raise UsageError(
            f"A snapshot goes into a folder .backup.<pid>.tmp inside {index_dir}, not {into}."
        )
    remove_tree(into)
    location = engine.parts.location
    fmt = format_for_store(location)
    collections: list[CollectionSnapshot] = []
    reports: list[CopyReport] = []
    try:
        with engine.write_lock:
            held = time.perf_counter()
            engine.flush()
            private_dir(into / "index")
            (into / "collections").mkdir(mode=0o700)
            _copy_config(engine, into / "index" / "config.json")
            _copy_state(engine, into / "index" / "state.db")
            for name in _collections(engine):
                target = into / "collections" / name
                reports.append(fmt.export(engine.store, location, name, target))
                collections.append(describe_collection(engine.store, fmt, name))
            failpoint("backup.snapshot")
            problems = engine.check()
            paused = time.perf_counter() - held
    except OSError as exc:
        remove_tree(into)
        if is_no_space(exc):
            raise disk_full(index_dir) from None
        raise
    except BaseException:
        remove_tree(into)
        raise
    config = engine.config
    return IndexSnapshot(
        folder=str(into),
        project_root=str(engine.paths.root),
        project_id=config.identity.id,
        storage_mode=config.storage_mode,
        model_id=config.embedding.model_id,
        dim=config.embedding.dim,
        config_schema=config.schema_version,
        state_schema=engine.db.schema_version,
        collections=collections,
        paused_seconds=paused,
        copy_method=copy_method(reports),
        problems=problems,
    )


def _collections(engine: Engine) -> list[str]:
    """The collections to copy: the project's own first, then any other one
    its store holds (a migration's), never a damaged or dropped copy."""
    # Imported here: every command imports this module, few need the engine.
    from cidx.store.base import DROPPED, SET_ASIDE

    primary = engine.collection
    others = [
        name
        for name in engine.collections.names()
        if name != primary and SET_ASIDE not in name and DROPPED not in name
    ]
    if engine.parts.location.mode != "local":
        # A shared store holds other projects' collections too.
        others = []
    return [primary, *others]


def _copy_config(engine: Engine, target: Path) -> None:
    data = engine.paths.config_file.read_bytes()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with open(fd, "wb") as fh:
        fh.write(data)


def _copy_state(engine: Engine, target: Path) -> None:
    """The state database through SQLite's backup API: a consistent copy
    whatever other connections do meanwhile, as one file without a WAL."""
    source = engine.db.conn
    try:
        with contextlib.closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
            # A file of its own: no journal beside it to lose.
            copy.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise state_error(engine.db.path, exc) from None
    os.chmod(target, 0o600)


def describe_collection(store: VectorStore, fmt: CollectionFormat, name: str) -> CollectionSnapshot:
    """The collection's point count and its sample query, for a manifest."""
    points = store.count(name)
    vector: list[float] | None = None
    hits: list[tuple[str, float]] = []
    if points:
        first = next(store.points(name, batch=1), None)
        if first is not None and first.dense is not None:
            vector = first.dense
            hits = sample_hits(store, name, vector)
    return CollectionSnapshot(
        name=name, points=points, format=fmt.name, sample_vector=vector, sample_hits=hits
    )


def sample_hits(store: VectorStore, name: str, vector: list[float]) -> list[tuple[str, float]]:
    """The top dense hits for `vector` in `name`, as (id, score)."""
    query = StoreQuery(
        searches=(Nearest("dense", vector, SAMPLE_HITS),), limit=SAMPLE_HITS, with_payload=False
    )
    return [(hit.id, hit.score) for hit in store.query(name, query)]


# Scores of the sample query may differ in the last bits between runs.
_SCORE_TOLERANCE = 1e-4


def verify_collections(collections: list[ArchivedCollection], store: VectorStore) -> str | None:
    """Why the restored `store` does not answer as the backed-up collections
    did (None: it does): each holds the points its manifest lists, and its
    sample query gives the same hits."""
    for collection in collections:
        try:
            points = store.count(collection.name)
        except CidxError as exc:
            return f"the collection {collection.name} does not open: {exc}"
        if points != collection.points:
            return (
                f"the collection {collection.name} holds {points:,} points where the "
                f"manifest lists {collection.points:,}"
            )
        if collection.sample is None:
            continue
        got = sample_hits(store, collection.name, collection.sample.dense())
        expected = collection.sample.hits
        if [i for i, _ in got] != [i for i, _ in expected] or any(
            abs(a - b) > _SCORE_TOLERANCE for (_, a), (_, b) in zip(got, expected, strict=True)
        ):
            return (
                f"the sample query of the collection {collection.name} answers otherwise than "
                "when the backup was taken"
            )
    return None


def copy_method(reports: list[CopyReport]) -> str:
    """How `reports`' copies were made, in one phrase (`CopyReport.method`)."""
    total = CopyReport(cloned=sum(r.cloned for r in reports), copied=sum(r.copied for r in reports))
    return total.method
