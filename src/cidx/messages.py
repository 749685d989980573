"""Typed requests and results passed between the CLI, the core and the owner.

Plain dataclasses with no heavy imports: the CLI renders them, and the
owner socket carries them as JSON (see `cidx.owner.protocol`), so a command
answered by the owner prints exactly what it prints when run in-process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cidx.answers import (
    QUERY_MODES as QUERY_MODES,
    FileIssue as FileIssue,
    IndexSummary as IndexSummary,
    Location as Location,
    NoArgs as NoArgs,
    OwnerState as OwnerState,
    Progress as Progress,
    QueryAnswer as QueryAnswer,
    QueryMode as QueryMode,
    QueryRequest as QueryRequest,
    SearchOutcome as SearchOutcome,
    SearchRequest as SearchRequest,
    SearchResult as SearchResult,
)


@dataclass(frozen=True)
class IndexRequest:
    clear: bool = False
    # Project-relative files or folders to sync instead of the whole project.
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class PendingChanges:
    """What a sync would change, from metadata alone. Files that cannot be
    read are not pending: no sync can index them until that changes."""

    added: int
    modified: int
    deleted: int

    @property
    def total(self) -> int:
        return self.added + self.modified + self.deleted


@dataclass(frozen=True)
class PauseHold:
    """Who holds an index's writes, and until when."""

    by: str  # the command: "cidx pause", "cidx clone"
    pid: int  # the process that asked for the pause
    since: str  # ISO 8601, UTC
    until: str  # ISO 8601, UTC: the pause ends by itself then
    seconds_left: float


@dataclass(frozen=True)
class StatusReport:
    root: str
    index_dir: str
    storage_mode: str
    storage_path: str
    collection: str
    model: str
    files: int
    chunks: int
    points: int
    disk_bytes: int
    pending: PendingChanges
    last_index_at: str | None
    last_index_seconds: float | None
    owner_pid: int | None
    owner_kind: str | None
    # Damage or drift between manifest and store, each with the command that repairs it.
    problems: list[str] = field(default_factory=list)
    # The index is read-only for this user: reported from a snapshot of it.
    read_only: bool = False
    # The project's id (what its collections are named after), and the id its
    # git remote gives it now when that differs (`cidx project update-remote`).
    project_id: str = ""
    project_id_now: str | None = None
    # The rest of the account a sync gives (see `IndexSummary`); `files` is
    # its `files_indexed`. From the manifest and a walk, without reading files.
    files_empty: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    # Who holds the index's writes now (`cidx pause`, `cidx clone`), if anyone.
    pauses: list[PauseHold] = field(default_factory=list)
    # The collection migration under way (`cidx collections migrate`), if any.
    migration: MigrationView | None = None
    # Chunks still waiting for their dense vectors (a staged sync's dense pass
    # runs in the owner, or resumes with the next command).
    chunks_pending: int = 0


@dataclass(frozen=True)
class InitResult:
    root: str
    index_dir: str
    collection: str
    model: str
    max_file_size: int
    created: bool  # False: the index existed and was kept
    replaced: bool  # --force replaced an existing index
    # The size limit the existing index had, when this changed it.
    previous_max_file_size: int | None = None
    storage_mode: str = "local"
    storage_path: str = ""  # where the collection lives: a folder, or a server and a name
    # The storage mode the existing index had, when this moved it.
    previous_storage_mode: str | None = None


@dataclass(frozen=True)
class Health:
    """How current a live owner's index is (`GET /healthz`)."""

    ok: bool
    mode: str  # "watch" or "periodic"
    pid: int
    # Seconds since the last successful sync finished (None before the first).
    freshness_seconds: float | None
    # Age of the oldest file change not yet in the index (0 when none waits).
    lag_seconds: float
    queue_depth: int
    last_error: str | None
    last_sync_at: str | None


@dataclass(frozen=True)
class FlushRequest:
    """Make the project's collections (or the one named) durable on disk."""

    collection: str | None = None


@dataclass(frozen=True)
class CollectionFlush:
    """One collection flushed: its segments written and its write-ahead log
    checkpointed (acknowledged up to the last update)."""

    collection: str
    points: int | None  # None when it could not be read
    seconds: float
    error: str | None = None  # why it could not be flushed


@dataclass(frozen=True)
class StateFlush:
    """The state database's write-ahead log written back into the database."""

    path: str
    wal_frames: int  # pages that were in the WAL
    checkpointed: int  # pages written back
    complete: bool  # all of them, and the WAL truncated
    error: str | None = None


@dataclass(frozen=True)
class FlushReport:
    root: str
    collections: list[CollectionFlush]
    state: StateFlush
    seconds: float
    pid: int  # the process that flushed (the owner, when another process owns the index)

    @property
    def ok(self) -> bool:
        return self.state.error is None and all(c.error is None for c in self.collections)


@dataclass(frozen=True)
class PauseRequest:
    by: str  # the command asking: "cidx pause", "cidx clone"
    pid: int
    seconds: float  # the pause ends by itself after this long
    # The token of a pause still in effect: renew it instead of adding one.
    token: str = ""
    # How long to wait for a sync in progress to finish (None: as long as it takes).
    wait_seconds: float | None = None


@dataclass(frozen=True)
class PauseState:
    """The answer to a pause: the holds now in effect, and what was flushed."""

    root: str
    pid: int  # the process holding the index (the owner)
    holds: list[PauseHold]
    token: str  # this pause's, for `ResumeRequest` (and for renewing it)
    # The flush done when writes stopped (None when a pause was only renewed).
    flush: FlushReport | None = None


@dataclass(frozen=True)
class ResumeRequest:
    # The pause to end; every pause when empty (`cidx resume`).
    token: str = ""


@dataclass(frozen=True)
class ResumeResult:
    root: str
    released: list[PauseHold]  # the pauses this ended
    remaining: list[PauseHold]  # pauses still in effect (other holders')
    # The pause named by the token was still in effect (it had not expired,
    # and nobody else had ended it); always True without a token.
    found: bool
    pid: int | None  # the owner that answered; None when no process held the index


RelocationKind = Literal["none", "move", "clone"]


@dataclass(frozen=True)
class ConfigChange:
    """One value `cidx fix-config` changed (or would change)."""

    field: str  # "project_root", "identity", "collection"
    old: str
    new: str


@dataclass(frozen=True)
class Verification:
    """What was checked after a fix: counts, and a sample query.

    `points` and `query` are None for a quick check, which reads the
    manifest and looks for the shard but does not open it (opening a
    shard costs seconds at 100k points).
    """

    files: int
    chunks: int
    points: int | None = None
    query: str | None = None
    query_found: bool | None = None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FixReport:
    """What `cidx fix-config` found, and what it changed."""

    root: str
    kind: RelocationKind  # what the project turned out to be
    recorded_root: str  # where the config said the project was
    reason: str  # one sentence: why it is a move, a clone, or neither
    storage_mode: str
    changes: list[ConfigChange]
    dry_run: bool
    backup: str | None  # the old config, kept
    verification: Verification | None
    # An interrupted fix (killed part-way) was finished first.
    finished_interrupted: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class CloneResult:
    source: str
    target: str
    method: str  # "copy-on-write", "plain copy", "mixed (some files copied)"
    copy_on_write: bool
    files_cloned: int
    files_copied: int
    bytes: int  # the files' apparent size
    # How the source was kept still: paused through its owner (its kind and
    # pid), or its lock held by the clone itself (no process had it open).
    paused_owner: str | None
    pause_seconds: float  # how long the source was paused
    copy_seconds: float
    fix: FixReport
    seconds: float


@dataclass(frozen=True)
class SnapshotRequest:
    """Copy the index, as it is at one instant, into `into` (a new folder
    inside the index folder, named as a temporary: `.backup.<pid>.tmp`)."""

    into: str


@dataclass(frozen=True)
class CollectionSnapshot:
    name: str
    points: int
    format: str  # how its files are laid out (`cidx.snapshots`)
    # A dense query (a stored point's own vector) and the hits it gave, as
    # (id, score): a restore asks the same and expects the same.
    sample_vector: list[float] | None = None
    sample_hits: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class IndexSnapshot:
    """What a snapshot copied: `folder` holds `index/` and `collections/<name>/`
    as a backup archive lays them out."""

    folder: str
    project_root: str
    project_id: str
    storage_mode: str
    model_id: str
    dim: int
    config_schema: int
    state_schema: int
    collections: list[CollectionSnapshot]
    # How long the index's writes were held (queries went on meanwhile).
    paused_seconds: float
    # `CopyReport.method`: "copy-on-write", "plain copy" or "mixed …".
    copy_method: str
    # Damage the index had (each names its repair); copied as it was.
    problems: list[str] = field(default_factory=list)


# -- collection migrations (`cidx collections migrate`, `cidx.dualwrite`) -----


@dataclass(frozen=True)
class MigrationView:
    """A collection migration as `cidx collections migration status` shows it."""

    id: str
    source: str
    target: str
    phase: str
    reads: str  # the collection reads of SOURCE go to now
    dual_write: bool  # every write goes to both sides
    source_model: str
    target_model: str
    copied: int  # points the backfill wrote
    total: int | None  # points SOURCE held when the backfill started
    queued: int  # writes waiting in the outbox for the other side
    started_by: str
    started_at: float
    cutover_at: float | None = None
    cleanup_after: float | None = None  # when cleanup needs no --force
    ended_at: float | None = None
    detail: str | None = None  # why it stopped (a validation report)
    next_step: str = ""
    # Where each side lives when the index moves to another store
    # ("local", "global", "server URL"); None: the project's store.
    source_place: str | None = None
    target_place: str | None = None


@dataclass(frozen=True)
class MigrateRequest:
    source: str
    target: str
    reembed: str | None = None  # a model id; None: copy the vectors
    batch: int | None = None  # None: the default for a copy or a re-embedding
    retain_seconds: float = 30 * 86400.0
    # `cidx storage migrate`: the storage mode the project's collection moves
    # to (SOURCE and TARGET are then chosen by the owner), and for "server"
    # the server's settings (`ServerSettings` as JSON, never an API key).
    to_storage: str | None = None
    server: str | None = None


@dataclass(frozen=True)
class ConfigSetRequest:
    """`cidx config set KEY VALUE`."""

    key: str
    value: str


@dataclass(frozen=True)
class MigrationRequest:
    action: Literal["status", "cutover", "rollback", "cleanup"] = "status"
    force: bool = False


@dataclass(frozen=True)
class MigrationReport:
    """What a migration command did, and the migration now (None: there is none)."""

    root: str
    done: str
    migration: MigrationView | None = None
