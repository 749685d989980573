"""The messages of a search round trip: the query, its answer, and a ping.

Split from `cidx.messages` (which re-exports them) so that a `cidx query`
answered by an owner builds these few classes only: each dataclass costs its
import time, and that path is meant to be dominated by the search itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

QueryMode = Literal["hybrid", "semantic", "keyword"]
QUERY_MODES: tuple[QueryMode, ...] = ("hybrid", "semantic", "keyword")


@dataclass(frozen=True)
class NoArgs:
    """The request of an operation that takes nothing."""


@dataclass(frozen=True)
class OwnerState:
    """What an owner says about itself when pinged."""

    pid: int
    live: bool  # it keeps the index current itself (a watcher)
    busy: bool  # a sync is running
    # Writes are held (`cidx pause`) for this many more seconds at most.
    paused_for: float | None = None


@dataclass(frozen=True)
class QueryRequest:
    text: str
    limit: int = 10
    mode: QueryMode = "hybrid"
    paths: tuple[str, ...] = ()  # glob patterns, any may match
    languages: tuple[str, ...] = ()
    min_score: float | None = None


@dataclass(frozen=True)
class Location:
    """Where else a result's definition is: a generated copy of it (`.cjs`, `.d.ts`, `dist/`)."""

    path: str
    start_line: int
    end_line: int

    def as_json(self) -> dict[str, object]:
        return {"path": self.path, "start_line": self.start_line, "end_line": self.end_line}


@dataclass(frozen=True)
class SearchResult:
    path: str
    start_line: int
    end_line: int
    score: float
    language: str
    symbol: str
    kind: str
    text: str
    # The same definition's other copies, folded into this result (best first).
    also: tuple[Location, ...] = ()

    def as_json(self) -> dict[str, object]:
        """The documented JSON shape of a result (`--json`, `--batch`, HTTP, MCP)."""
        return {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "score": self.score,
            "language": self.language,
            "symbol": self.symbol,
            "kind": self.kind,
            "text": self.text,
            "also": [loc.as_json() for loc in self.also],
        }


@dataclass(frozen=True)
class QueryAnswer:
    query: str
    results: list[SearchResult]
    # Answered while the index is still being embedded (a staged sync's
    # dense pass runs): keyword matches are complete, meaning covers only
    # `embedded_share` of the chunks.
    partial: bool = False
    embedded_share: float = 1.0

    def as_json(self, root: str) -> dict[str, object]:
        """One `--batch` line: {"query": ..., "root": ..., "partial": ...,
        "embedded_share": ..., "results": [...]}; result paths are relative
        to `root`, the project root."""
        return {
            "query": self.query,
            "root": root,
            "partial": self.partial,
            "embedded_share": round(self.embedded_share, 4),
            "results": [r.as_json() for r in self.results],
        }


@dataclass(frozen=True)
class FileIssue:
    """A file that was skipped or indexed with a caveat, and why."""

    path: str
    reason: str
    detail: str


@dataclass
class IndexSummary:
    """What one sync did, with an account of every file it looked at.

    The account: each of the `files_scanned` files (and each folder that
    could not be entered) ends up in exactly one of

        files_indexed   in the index with at least one chunk
        files_empty     in the index, but with no text to search
        files_skipped   not indexed, on purpose; `skipped` says why
        files_failed    not indexed because it could not be read; `failed`
                        says why (it is tried again on every sync)

    so `files_scanned == files_indexed + files_empty + files_skipped +
    files_failed`. The changes are counted over the files in the index:
    `files_added + files_modified + files_unchanged == files_indexed +
    files_empty`, and `files_deleted` counts the files that left it (removed,
    or now skipped).
    """

    files_scanned: int = 0
    files_indexed: int = 0
    files_empty: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    files_added: int = 0
    files_modified: int = 0
    files_deleted: int = 0
    files_unchanged: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    points_upserted: int = 0
    points_deleted: int = 0
    # Chunks in the index still waiting for their dense vectors when the sync
    # returned (a staged sync leaves them to the owner's dense pass).
    chunks_pending: int = 0
    seconds: float = 0.0
    rebuilt: bool = False
    initialized: bool = False
    # True when only part of the project was synced: the paths asked for (see
    # `IndexRequest.paths`), and the folders of any ignore file among them.
    scoped: bool = False
    # True when an ignore file among the paths widened the sync to everything
    # it can affect (its folder, or the whole project for a root-level one).
    widened: bool = False
    skipped: list[FileIssue] = field(default_factory=list)
    failed: list[FileIssue] = field(default_factory=list)
    # Indexed, with a caveat (e.g. not valid UTF-8), or a path asked for that
    # does not exist: not part of the account.
    warnings: list[FileIssue] = field(default_factory=list)
    # Damage this sync found and repaired, one sentence each.
    repairs: list[str] = field(default_factory=list)

    @property
    def files_changed(self) -> int:
        return self.files_added + self.files_modified

    @property
    def changed_anything(self) -> bool:
        """Whether this sync created, rebuilt, repaired or changed the index at all."""
        return (
            self.initialized
            or self.rebuilt
            or bool(self.files_changed or self.files_deleted or self.repairs)
        )


@dataclass(frozen=True)
class Progress:
    """How far a sync is. `bytes_*` drive the bar; files and chunks are shown."""

    phase: Literal["scan", "index", "finish", "migrate"]  # migrate: files are points
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0

    @property
    def shows_work(self) -> bool:
        """Whether a progress display has anything to show: files being indexed."""
        return self.phase == "index" and self.files_total > 0


@dataclass(frozen=True)
class SearchRequest:
    """One or more queries, optionally after bringing the index up to date."""

    queries: list[QueryRequest]
    sync: bool = True
    # Search this collection (or alias) instead of the project's own.
    collection: str | None = None


@dataclass(frozen=True)
class SearchOutcome:
    answers: list[QueryAnswer]
    # The sync run before searching, when one ran (None when the owner keeps
    # the index live, or the caller asked for no sync).
    sync: IndexSummary | None = None
    # Time spent searching (after any sync), as measured where it ran.
    search_seconds: float = 0.0
    # Problems of the index the answers came from (when no sync ran first).
    warnings: list[str] = field(default_factory=list)
    # The index is read-only for this user: searched as it is, unsynced.
    read_only: bool = False
