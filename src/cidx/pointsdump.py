"""A collection as plain points: how a Qdrant server's collections go into a backup.

An embedded store's collection is backed up as its shard folder
(`cidx.snapshots.EdgeShardFormat`). A server's collection has no folder on
this machine, so it is read out point by point (`VectorStore.page`, under
the index's held writes, so one consistent state) into three files:

    meta.json     {"format": 1, "dim": 384, "points": n}
    dense.f32     every point's dense vector, float32 little-endian, in order
    points.jsonl  one line per point, in the same order: its id, its sparse
                  vector ({"i": [...], "v": [...]}) and its payload

Both vectors are stored exactly as the store holds them (float32), so a
restored collection answers every query as the backed-up one did. The
files are independent of any engine's version: they install into any
store (`install`: create the collection, upsert in batches), so a server
collection restores into an embedded shard as readily as into a server,
and the archive's sha256 per file checks them like any other member.
Qdrant's own snapshots would be faster on a large server collection, but
they tie a backup to one server version and exist only on a real server;
docs/server.md says how to take them of the whole server.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cidx.errors import ArchiveError
from cidx.storage import StorageLocation, open_store
from cidx.store import PointData, SparseVec, VectorStore
from cidx.treecopy import CopyReport

__all__ = ["POINTS", "PointsFormat"]

POINTS = "points-v1"
_VERSION = 1
_PAGE = 512
_META, _DENSE, _POINTS = "meta.json", "dense.f32", "points.jsonl"


class PointsFormat:
    """Collections read out as points, and written back through any store."""

    name = POINTS

    def export(
        self, store: VectorStore, location: StorageLocation, collection: str, into: Path
    ) -> CopyReport:
        into.mkdir(mode=0o700)
        dim: int | None = None
        count = 0
        with (
            _private(into / _DENSE) as dense_out,
            _private(into / _POINTS) as points_out,
        ):
            offset: str | None = None
            while True:
                page, offset = store.page(collection, offset=offset, limit=_PAGE)
                for point in page:
                    if not point.dense:
                        raise ArchiveError(
                            f"The collection {collection} is still being embedded (the dense "
                            "pass of a staged index has not ended); it cannot be backed up as "
                            "it is. Back up again once `cidx status` shows no chunks left to "
                            "embed."
                        )
                    if dim is None:
                        dim = len(point.dense)
                    if len(point.dense) != dim:
                        raise ArchiveError(
                            f"The collection {collection} holds vectors of {dim} and "
                            f"{len(point.dense)} dimensions; it cannot be backed up as it is. "
                            "Run `cidx index --clear` to rebuild it, then back up again."
                        )
                    dense_out.write(_floats(point.dense))
                    points_out.write(_line(point))
                    count += 1
                if offset is None:
                    break
        meta = {"format": _VERSION, "dim": dim or 0, "points": count}
        with _private(into / _META) as out:
            out.write(json.dumps(meta).encode())
        size = sum(p.stat().st_size for p in into.iterdir())
        return CopyReport(copied=3, bytes=size)

    def install(self, files: Path, location: StorageLocation, collection: str) -> None:
        meta = _meta(files)
        store = open_store(location)
        try:
            if store.collection_exists(collection):
                raise ArchiveError(
                    f"The collection {collection} already exists in "
                    f"{location.where(collection)}: a restore never writes over a collection. "
                    "Remove it, or restore into another place."
                )
            store.create_collection(collection, meta["dim"] or 1)
            batch: list[PointData] = []
            for point in _read(files, meta):
                batch.append(point)
                if len(batch) >= _PAGE:
                    store.upsert(collection, batch)
                    batch = []
            if batch:
                store.upsert(collection, batch)
            store.flush(collection)
        finally:
            store.close()


@contextlib.contextmanager
def _private(path: Path) -> Iterator[BinaryIO]:
    """A new file only this user can read, synced when closed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with open(fd, "wb", buffering=1 << 20) as out:
        yield out
        out.flush()
        os.fsync(out.fileno())


def _floats(values: list[float]) -> bytes:
    data = array("f", values)
    if sys.byteorder != "little":
        data.byteswap()
    return data.tobytes()


def _line(point: PointData) -> bytes:
    record = {
        "id": point.id,
        "sparse": {"i": point.sparse.indices, "v": point.sparse.values},
        "payload": point.payload,
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _meta(files: Path) -> dict[str, int]:
    try:
        meta = json.loads((files / _META).read_text())
        if meta.get("format") != _VERSION:
            raise ArchiveError(
                f"The points in {files} are in format {meta.get('format')!r}, which this cidx "
                f"cannot read (it reads {_VERSION}). Restore with a newer cidx."
            )
        return {"dim": int(meta["dim"]), "points": int(meta["points"])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArchiveError(
            f"The points of a collection in the backup are unreadable ({exc})."
        ) from None


def _read(files: Path, meta: dict[str, int]) -> Iterator[PointData]:
    """The points of `files`, checked against `meta` as they are read."""
    width = meta["dim"] * 4
    expected = meta["points"]
    seen = 0
    with (files / _DENSE).open("rb") as dense, (files / _POINTS).open("rb") as lines:
        for raw in lines:
            block = dense.read(width)
            if len(block) != width:
                break
            try:
                record = json.loads(raw)
                sparse = record["sparse"]
                values = array("f")
                values.frombytes(block)
                if sys.byteorder != "little":
                    values.byteswap()
                yield PointData(
                    str(record["id"]),
                    values.tolist(),
                    SparseVec([int(i) for i in sparse["i"]], [float(v) for v in sparse["v"]]),
                    dict(record["payload"]),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ArchiveError(
                    f"Point {seen + 1} of a collection in the backup is unreadable ({exc})."
                ) from None
            seen += 1
        if seen != expected or dense.read(1):
            raise ArchiveError(
                f"A collection in the backup holds {seen:,} readable points where its record "
                f"says {expected:,}."
            )
