"""What an open index answers: one handler per verb, shared by every way in.

The owner socket (`cidx.owner.server`) and a command that owns the index
itself (`cidx.service.LocalIndex`) both answer through `Operations.handle`,
so a verb (`cidx.owner.protocol`) has one handler, here, and an answer from
the owner is the answer computed in-process.

How an index is held changes a few answers, and only here: a live owner (a
watcher) keeps the index current itself, so searches it answers skip the
pre-search sync; a paused index (`cidx pause`) is searched as it is, since
no write may start; a read-only snapshot can search and report but not sync.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cidx.dualwrite import migrate, migration_action
from cidx.errors import AccessError, UsageError
from cidx.formatting import duration
from cidx.fsutil import disk_usage
from cidx.messages import (
    ConfigSetRequest,
    FlushReport,
    FlushRequest,
    Health,
    IndexRequest,
    IndexSnapshot,
    IndexSummary,
    MigrateRequest,
    MigrationReport,
    MigrationRequest,
    NoArgs,
    OwnerState,
    PauseRequest,
    PauseState,
    Progress,
    ResumeRequest,
    ResumeResult,
    SearchOutcome,
    SearchRequest,
    SnapshotRequest,
    StatusReport,
)
from cidx.metrics import MetricsSnapshot, snapshot as metrics_snapshot
from cidx.owner import protocol, wire
from cidx.owner.wire import Verb
from cidx.snapshots import take_snapshot

if TYPE_CHECKING:
    from cidx.engine import Engine

ProgressFn = Callable[[Progress], None]
R = TypeVar("R")

# A live owner applying a batch of changes gets this long to finish before a
# query is answered, so a query right after a save sees the save.
LIVE_WAIT_SECONDS = 1.0
# The longest pause one request may ask for: a forgotten pause must end.
MAX_PAUSE_SECONDS = 24 * 3600.0


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A read-only copy being answered from: where the real index is."""

    index_dir: Path
    storage_path: str  # a folder, or a server and a collection
    error: AccessError


class Operations:
    """The handlers of one open index."""

    def __init__(self, engine: Engine, *, live: bool = False, snapshot: Snapshot | None = None):
        self.engine = engine
        self.live = live
        self.snapshot = snapshot
        # How current the index is, while something keeps it live (set by the
        # owner that runs the keeper: `cidx watch`, `serve`, the daemon).
        self.health: Callable[[], Health] | None = None
        self.table: dict[str, wire.Handler] = {
            protocol.PING.name: self.ping,
            protocol.SEARCH.name: self.search,
            protocol.INDEX.name: self.index,
            protocol.STATUS.name: self.status,
            protocol.FLUSH.name: self.flush,
            protocol.PAUSE.name: self.pause,
            protocol.RESUME.name: self.resume,
            protocol.SNAPSHOT.name: self.snapshot_to,
            protocol.MIGRATE.name: self.migrate,
            protocol.MIGRATION.name: self.migration,
            protocol.CONFIG_SET.name: self.config_set,
            protocol.HEALTH.name: self.freshness,
            protocol.METRICS.name: self.metrics,
        }

    def handle(self, verb: Verb[Any, R], args: Any, progress: ProgressFn) -> R:
        return wire.dispatch(self.table, verb, args, progress, "This index")

    # -- the handlers ------------------------------------------------------

    def ping(self, _args: NoArgs, _progress: ProgressFn) -> OwnerState:
        return OwnerState(
            pid=os.getpid(),
            live=self.live,
            busy=self.engine.syncing > 0,
            paused_for=self.engine.holds.seconds_left(),
        )

    def search(self, req: SearchRequest, progress: ProgressFn) -> SearchOutcome:
        engine = self.engine
        if self.snapshot is not None:
            outcome = engine.search_outcome(req, progress, sync=False)
            return dataclasses.replace(outcome, read_only=True)
        holds = engine.holds.active()
        if holds:
            outcome = engine.search_outcome(req, progress, sync=False)
            hold = holds[0].view()
            note = (
                f"The index is paused by `{hold.by}` (pid {hold.pid}) for "
                f"{duration(hold.seconds_left)} more: searched as it is, without syncing "
                "changed files first (`cidx resume` ends the pause)."
            )
            return dataclasses.replace(outcome, warnings=[*outcome.warnings, note])
        if (
            self.live
            and req.sync
            and engine.syncing
            and engine.write_lock.acquire(timeout=LIVE_WAIT_SECONDS)
        ):
            engine.write_lock.release()
        return engine.search_outcome(req, progress, sync=not self.live)

    def freshness(self, _args: NoArgs, _progress: ProgressFn) -> Health:
        health = self.health
        if health is None:
            raise UsageError(
                f"Nothing keeps the index of {self.engine.paths.root} live, so it has no "
                "freshness to report. Run `cidx watch` there."
            )
        return health()

    def metrics(self, _args: NoArgs, _progress: ProgressFn) -> MetricsSnapshot:
        return metrics_snapshot(self.engine.metrics)

    def index(self, req: IndexRequest, progress: ProgressFn) -> IndexSummary:
        if self.snapshot is not None:
            raise self.snapshot.error
        return self.engine.index(req, progress)

    def flush(self, req: FlushRequest, _progress: ProgressFn) -> FlushReport:
        if self.snapshot is not None:
            raise self.snapshot.error
        return self.engine.force_flush(req.collection)

    def pause(self, req: PauseRequest, _progress: ProgressFn) -> PauseState:
        if self.snapshot is not None:
            raise self.snapshot.error
        if not 0 < req.seconds <= MAX_PAUSE_SECONDS:
            raise UsageError(
                f"A pause lasts more than 0 and at most {MAX_PAUSE_SECONDS:g} seconds, not "
                f"{req.seconds:g}. Give --timeout SECONDS in that range."
            )
        hold, report = self.engine.pause(
            req.by, req.pid, req.seconds, token=req.token or None, wait=req.wait_seconds
        )
        return PauseState(
            root=str(self.engine.paths.root),
            pid=os.getpid(),
            holds=[h.view() for h in self.engine.holds.active()],
            token=hold.token,
            flush=report,
        )

    def resume(self, req: ResumeRequest, _progress: ProgressFn) -> ResumeResult:
        ended, found = self.engine.holds.release(req.token or None)
        return ResumeResult(
            root=str(self.engine.paths.root),
            released=[h.view() for h in ended],
            remaining=[h.view() for h in self.engine.holds.active()],
            found=found,
            pid=os.getpid(),
        )

    def status(self, _args: NoArgs, _progress: ProgressFn) -> StatusReport:
        report = self.engine.status()
        if self.snapshot is None:
            return report
        return dataclasses.replace(
            report,
            index_dir=str(self.snapshot.index_dir),
            storage_path=str(self.snapshot.storage_path),
            disk_bytes=disk_usage(self.snapshot.index_dir),
            read_only=True,
        )

    def snapshot_to(self, req: SnapshotRequest, _progress: ProgressFn) -> IndexSnapshot:
        if self.snapshot is not None:
            # A private copy of a read-only index: a backup is made by its owner.
            raise self.snapshot.error
        return take_snapshot(self.engine, req)

    def migrate(self, req: MigrateRequest, progress: ProgressFn) -> MigrationReport:
        if self.snapshot is not None:
            raise self.snapshot.error
        engine = self.engine
        return migrate(engine.migrator, engine.config, str(engine.paths.root), req, progress)

    def config_set(self, req: ConfigSetRequest, progress: ProgressFn) -> MigrationReport:
        if self.snapshot is not None:
            raise self.snapshot.error
        return self.engine.set_setting(req, progress)

    def migration(self, req: MigrationRequest, _progress: ProgressFn) -> MigrationReport:
        if self.snapshot is not None and req.action != "status":
            raise self.snapshot.error
        return migration_action(self.engine.migrator, str(self.engine.paths.root), req)
