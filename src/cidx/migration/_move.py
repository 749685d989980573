"""Moving a project's collection between stores: project-local ↔ global.

A move copies the collection into the other store, verifies the copy, and
only then makes the config name it and removes the source. Each step is
recorded (`cidx.migration._records`) before the next begins, and each can be
done again, so a move stopped at any point — an error, a SIGKILL, a power
cut — is taken up by the next command from its recorded status:

    copying    copy points in batches from the recorded offset (a batch
               copied twice changes nothing), flush, copy the manifest
    copied     verify: counts, then payloads, vectors and sample queries
    verified   write the config that names the target  ← the move happens
    committed  drop the source, its manifest and its registry entry
    done

Until the commit the source is untouched: it is the backup the project
returns to. A failure before the commit rolls the move back (the partial
target is dropped) and says so; after it, the move can only go forward.
When the global store is one side, the user registry names the collection
being copied in from the first step (so nothing takes it for an orphan) and
mirrors the migration's status.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from cidx.collections import COPY_BATCH, copy_collection, verify_copy
from cidx.config import Config, load_config, save_config
from cidx.errors import CidxError, MigrationError
from cidx.failpoints import failpoint
from cidx.fsutil import ensure_free
from cidx.migration._records import (
    MigrationLog,
    MigrationRecord,
    clear_marker,
    set_marker,
)
from cidx.project import ProjectPaths
from cidx.registry import Registry, RegistryMigration
from cidx.state import StateDB
from cidx.storage import StorageLocation, StorageMode, location_for, open_store
from cidx.store import VectorStore

__all__ = ["MigrationFn", "MigrationProgress", "Move", "Place", "describe", "start_move"]

log = logging.getLogger(__name__)

# Room a move needs on the target's disk beyond what the source takes.
_ROOM_ALLOWANCE = 16 * 1024 * 1024
Phase = Literal["start", "copy", "verify", "commit", "cleanup", "done", "rollback", "rolled_back"]


@dataclass(frozen=True)
class MigrationProgress:
    """How a migration advances: what a command shows while it waits for one."""

    id: str
    phase: Phase
    source: str  # where from, in words
    target: str  # where to
    done: int = 0  # points copied so far
    total: int = 0  # points to copy
    detail: str | None = None


MigrationFn = Callable[[MigrationProgress], None]


@dataclass(frozen=True)
class Place:
    """A collection in one of the project's two possible stores."""

    mode: StorageMode
    collection: str


def describe(location: StorageLocation) -> str:
    if location.mode == "global":
        return f"the global store ({location.data_dir})"
    return f"the project's own store ({location.data_dir})"


def _mode(value: str | None) -> StorageMode:
    return "global" if value == "global" else "local"


def _batch_size() -> int:
    # Tests make batches small to stop a copy between two of them.
    value = os.environ.get("CIDX_MIGRATION_BATCH", "")
    return int(value) if value.isdigit() and int(value) > 0 else COPY_BATCH


def start_move(paths: ProjectPaths, db: StateDB, source: Place, target: Place) -> MigrationRecord:
    """Record a new move (the marker first, so no record is ever unannounced)."""
    migration_id = uuid.uuid4().hex[:12]
    set_marker(paths, migration_id)
    origin = location_for(paths, source.mode)
    record = MigrationRecord(
        id=migration_id,
        kind="relocate",
        status="copying",
        started_at=time.time(),
        source_mode=source.mode,
        source_collection=source.collection,
        target_mode=target.mode,
        target_collection=target.collection,
        backup=str(origin.collection_dir(source.collection)),
    )
    log.info(
        "migration %s: moving %s from %s to %s as %s",
        migration_id,
        source.collection,
        describe(origin),
        describe(location_for(paths, target.mode)),
        target.collection,
    )
    return MigrationLog(db).add(record)


class Move:
    """One move, taken from whatever status it was recorded in to the end."""

    def __init__(
        self,
        paths: ProjectPaths,
        db: StateDB,
        record: MigrationRecord,
        notify: MigrationFn | None = None,
    ) -> None:
        assert record.source_collection and record.target_collection
        self.paths = paths
        self.db = db
        self.log = MigrationLog(db)
        self.record = record
        self.notify = notify
        self.source = location_for(paths, _mode(record.source_mode))
        self.target = location_for(paths, _mode(record.target_mode))
        self.source_name = record.source_collection
        self.target_name = record.target_collection
        self.global_name = self.source_name if self.source.mode == "global" else self.target_name

    # -- running -----------------------------------------------------------

    def run(self) -> MigrationRecord:
        """Finish the move (or its rollback). MigrationError when this run had to
        roll it back; a rollback an earlier process began is only finished
        (the caller then sees the data where it is and may try again)."""
        failed_here = False
        with self._stores() as (source, target), self._registry() as registry:
            self.registry = registry
            while not self.record.finished:
                status = self.record.status
                if status in ("copying", "copied"):
                    try:
                        if status == "copying":
                            self._copy(source, target)
                        else:
                            self._verify(source, target)
                    except Exception as exc:
                        reason = exc.message if isinstance(exc, CidxError) else str(exc)
                        self.record = self.log.update(
                            self.record, status="rolling_back", detail=reason
                        )
                        self._mirror()
                        failed_here = True
                elif status == "verified":
                    self._commit()
                elif status == "committed":
                    self._cleanup(source)
                elif status == "rolling_back":
                    self._roll_back(target)
                    if failed_here:
                        raise self._failed()
                else:
                    raise MigrationError(
                        f"The migration {self.record.id} of the index of {self.paths.root} has "
                        f"the unknown status {status!r}. Run `cidx migrations reset` there."
                    )
        return self.record

    def roll_back(self) -> MigrationRecord:
        """Undo a move that has not been committed (`cidx migrations reset`)."""
        with self._stores() as (_source, target), self._registry() as registry:
            self.registry = registry
            self.record = self.log.update(
                self.record, status="rolling_back", detail="reset by `cidx migrations reset`"
            )
            self._roll_back(target)
        return self.record

    def finish(self) -> MigrationRecord:
        """Complete a committed move (it cannot be undone any more)."""
        with self._stores() as (source, _target), self._registry() as registry:
            self.registry = registry
            self._cleanup(source)
        return self.record

    @contextlib.contextmanager
    def _stores(self) -> Iterator[tuple[VectorStore, VectorStore]]:
        source = open_store(self.source)
        try:
            target = open_store(self.target)
            try:
                yield source, target
            finally:
                target.close()
        finally:
            source.close()

    @contextlib.contextmanager
    def _registry(self) -> Iterator[Registry]:
        registry = Registry()
        try:
            yield registry
        finally:
            registry.close()

    def _tell(self, phase: Phase, detail: str | None = None) -> None:
        if self.notify is not None:
            r = self.record
            self.notify(
                MigrationProgress(
                    r.id,
                    phase,
                    describe(self.source),
                    describe(self.target),
                    r.copied,
                    r.total or 0,
                    detail,
                )
            )

    def _mirror(self) -> None:
        r = self.record
        self.registry.record_migration(
            RegistryMigration(
                id=r.id,
                project_root=str(self.paths.root),
                collection=self.global_name,
                direction="in" if self.target.mode == "global" else "out",
                status=r.status,
                started_at=r.started_at,
                ended_at=r.ended_at,
                backup=r.backup,
                detail=r.detail,
            )
        )

    def _config(self) -> Config:
        return load_config(self.paths)

    # -- the steps ---------------------------------------------------------

    def _copy(self, source: VectorStore, target: VectorStore) -> None:
        r = self.record
        config = self._config()
        if self.target.mode == "global":
            # Named before its first byte exists: never an orphan.
            self.registry.put(
                self.target_name,
                root=self.paths.root,
                project_id=config.identity.id,
                model=config.embedding.model_id,
                state="incoming",
            )
        self._mirror()
        failpoint("migration_start")
        start = r.next_offset
        complete = r.copied > 0 and start is None
        if not target.collection_exists(self.target_name) or (start is None and not complete):
            # A first attempt, or the partial copy was lost: from the beginning.
            target.drop_collection(self.target_name)
            ensure_free(self.target.folder, self.source.usage([self.source_name]) + _ROOM_ALLOWANCE)
            start, complete = None, False
            r = self.record = self.log.update(r, copied=0, next_offset=None)
        total = source.count(self.source_name)
        self.record = self.log.update(r, total=total)
        self._tell("start" if self.record.copied == 0 else "copy")
        if not complete:
            base = self.record.copied

            def advanced(following: str | None, copied: int) -> None:
                self.record = self.log.update(
                    self.record, next_offset=following, copied=base + copied
                )
                self._tell("copy")
                failpoint("migration_batch")

            copy_collection(
                source,
                self.source_name,
                target,
                self.target_name,
                config.embedding.dim,
                start=start,
                batch=_batch_size(),
                on_batch=advanced,
            )
        target.flush()
        with self.db.transaction() as tx:
            self.db.manifest(self.source_name).copy_to(tx, self.target_name)
            self.record = self.log.update(self.record, tx, status="copied")
        failpoint("migration_copied")

    def _verify(self, source: VectorStore, target: VectorStore) -> None:
        self._tell("verify")
        problems = verify_copy(source, self.source_name, target, self.target_name)
        if problems:
            raise MigrationError("the copy does not match: " + "; ".join(problems))
        self.record = self.log.update(self.record, status="verified")
        self._mirror()
        failpoint("migration_verified")

    def _commit(self) -> None:
        self._tell("commit")
        config = self._config()
        if config.storage_mode != self.target.mode or config.collection != self.target_name:
            save_config(
                self.paths,
                config.model_copy(
                    update={"storage_mode": self.target.mode, "collection": self.target_name}
                ),
            )
        failpoint("migration_config_written")
        if self.target.mode == "global":
            self.registry.put(
                self.target_name,
                root=self.paths.root,
                project_id=config.identity.id,
                model=config.embedding.model_id,
            )
        self.record = self.log.update(self.record, status="committed")
        self._mirror()
        failpoint("migration_committed")

    def _cleanup(self, source: VectorStore) -> None:
        self._tell("cleanup")
        self._remove(source, self.source_name, self.source.mode, "migration_source_dropped")
        self.record = self.log.update(self.record, status="done", backup=None)
        self._mirror()
        clear_marker(self.paths)
        log.info("migration %s: done (%d points)", self.record.id, self.record.copied)
        self._tell("done")

    def _roll_back(self, target: VectorStore) -> None:
        self._tell("rollback", self.record.detail)
        self._remove(target, self.target_name, self.target.mode, "migration_rolled_back_data")
        self.record = self.log.update(self.record, status="rolled_back")
        self._mirror()
        clear_marker(self.paths)
        log.warning("migration %s: rolled back (%s)", self.record.id, self.record.detail)
        self._tell("rolled_back", self.record.detail)

    def _remove(self, store: VectorStore, name: str, mode: str, dropped: str) -> None:
        """One side of the move gone: its data (the failpoint `dropped` after),
        its manifest unless both sides share the name, its registry entry."""
        store.drop_collection(name)
        store.drop_set_aside(name)
        failpoint(dropped)
        if self.source_name != self.target_name:
            with self.db.transaction() as tx:
                self.db.manifest(name).clear(tx)
        if mode == "global":
            self.registry.forget(name)

    def _failed(self) -> MigrationError:
        return MigrationError(
            f"Moving the index of {self.paths.root} from {describe(self.source)} to "
            f"{describe(self.target)} failed ({self.record.detail}). It was rolled back: the "
            f"index is still in {describe(self.source)}. Run the command again to retry (free "
            "some space first if the disk is full), or run `cidx migrations reset` to keep "
            "the index where it is."
        )
