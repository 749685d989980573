"""What the MCP tools answer: typed structured content, and the same as readable text.

Each tool returns a pydantic model (its JSON Schema is the tool's published
output schema) plus a plain-text rendering of it, for clients that show the
model only text content.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from cidx.formatting import count, duration, partial_note, size, sync_counts
from cidx.messages import IndexSummary, QueryAnswer, StatusReport

MAX_SNIPPET_LINES = 60


# -- search ------------------------------------------------------------------


class SearchHit(BaseModel):
    path: str = Field(description="File path, relative to the project root.")
    start_line: int = Field(description="First line of the chunk (1-based).")
    end_line: int = Field(description="Last line of the chunk (inclusive).")
    symbol: str = Field(
        description="The definition the chunk is, e.g. `UploadQueue.retry_failed` or a "
        "markdown heading path; empty for plain line windows."
    )
    kind: str = Field(description="What the chunk is: function, method, class, section, …")
    language: str
    score: float = Field(
        description="Relevance; higher is better. hybrid: 0..1, comparable across searches; "
        "semantic: cosine similarity; keyword: raw BM25."
    )
    snippet: str = Field(
        description=f"The chunk's text; past {MAX_SNIPPET_LINES} lines it is cut, with a "
        "marker line saying how many lines were left out."
    )


class SearchOutput(BaseModel):
    query: str
    mode: str
    results: list[SearchHit] = Field(description="Best first.")
    index_update: str | None = Field(
        None,
        description="What the sync run before searching changed, when it changed anything.",
    )
    partial: bool = Field(
        False,
        description="The index is still being embedded: keyword matches are complete, "
        "meaning covers only embedded_share of it.",
    )
    embedded_share: float = Field(1.0, description="Share of chunks with semantic vectors.")


def trim_snippet(text: str, start_line: int, max_lines: int = MAX_SNIPPET_LINES) -> str:
    lines = text.split("\n")
    if len(lines) <= max_lines:
        return text
    left_out = len(lines) - max_lines
    last = start_line + len(lines) - 1
    return "\n".join([*lines[:max_lines], f"[… {left_out} more lines, to line {last}]"])


def search_output(answer: QueryAnswer, mode: str, sync: IndexSummary | None) -> SearchOutput:
    return SearchOutput(
        query=answer.query,
        mode=mode,
        results=[
            SearchHit(
                path=r.path,
                start_line=r.start_line,
                end_line=r.end_line,
                symbol=r.symbol,
                kind=r.kind,
                language=r.language,
                score=r.score,
                snippet=trim_snippet(r.text, r.start_line),
            )
            for r in answer.results
        ],
        index_update=_changes(sync),
        partial=answer.partial,
        embedded_share=round(answer.embedded_share, 4),
    )


def search_text(out: SearchOutput) -> str:
    count = len(out.results)
    head = f"{count} result{'s' * (count != 1)} for {out.query!r} ({out.mode})"
    parts = [f"{head}." if count else f"No results for {out.query!r} ({out.mode})."]
    if out.index_update:
        parts.append(f"Index updated first: {out.index_update}.")
    if out.partial:
        parts.append(partial_note(out.embedded_share))
    for rank, hit in enumerate(out.results, 1):
        title = f"{rank}. {hit.path}:{hit.start_line}-{hit.end_line}"
        if hit.symbol:
            title += f" {hit.symbol}"
        fence = "```"
        while fence in hit.snippet:
            fence += "`"
        parts.append(f"{title} ({hit.score:.4f})\n{fence}{hit.language}\n{hit.snippet}\n{fence}")
    return "\n\n".join(parts)


def _changes(sync: IndexSummary | None) -> str | None:
    if sync is None or not sync.changed_anything:
        return None
    return f"{'created the index, ' if sync.initialized else ''}{sync_counts(sync)}"


# -- status ------------------------------------------------------------------


class PendingChangesOut(BaseModel):
    added: int
    modified: int
    deleted: int
    total: int


class OwnerOut(BaseModel):
    this_process: bool = Field(description="True when this MCP server owns the index itself.")
    pid: int | None
    kind: str | None = Field(description="The owning command: mcp, watch, serve, index, …")
    description: str


class StorageOut(BaseModel):
    mode: str
    index_dir: str
    path: str
    collection: str
    disk_bytes: int


class StatusOutput(BaseModel):
    root: str
    files: int
    chunks: int
    points: int
    pending_changes: PendingChangesOut = Field(
        description="Files that differ from the index on disk and are not indexed yet "
        "(a search brings them in first)."
    )
    last_index_at: str | None = Field(description="When the last sync finished (UTC, ISO 8601).")
    last_index_seconds: float | None = Field(description="How long the last sync took.")
    freshness_seconds: float | None = Field(description="Seconds since the last sync finished.")
    owner: OwnerOut
    model: str
    storage: StorageOut


def status_output(report: StatusReport) -> StatusOutput:
    freshness = None
    if report.last_index_at:
        last = datetime.fromisoformat(report.last_index_at)
        freshness = round(max(0.0, (datetime.now(UTC) - last).total_seconds()), 1)
    mine = report.owner_pid == os.getpid()
    if mine:
        who = "this process (`cidx mcp`)"
    elif report.owner_pid is not None:
        who = f"`cidx {report.owner_kind}` (pid {report.owner_pid})"
    else:
        who = "nobody"
    p = report.pending
    return StatusOutput(
        root=report.root,
        files=report.files,
        chunks=report.chunks,
        points=report.points,
        pending_changes=PendingChangesOut(
            added=p.added, modified=p.modified, deleted=p.deleted, total=p.total
        ),
        last_index_at=report.last_index_at,
        last_index_seconds=report.last_index_seconds,
        freshness_seconds=freshness,
        owner=OwnerOut(
            this_process=mine, pid=report.owner_pid, kind=report.owner_kind, description=who
        ),
        model=report.model,
        storage=StorageOut(
            mode=report.storage_mode,
            index_dir=report.index_dir,
            path=report.storage_path,
            collection=report.collection,
            disk_bytes=report.disk_bytes,
        ),
    )


def status_text(out: StatusOutput) -> str:
    if out.last_index_at is None:
        last = "never"
    else:
        ago = f"{duration(out.freshness_seconds)} ago" if out.freshness_seconds is not None else ""
        took = f", took {duration(out.last_index_seconds)}" if out.last_index_seconds else ""
        last = f"{out.last_index_at} ({ago}{took})"
    p = out.pending_changes
    return "\n".join(
        [
            f"Project: {out.root}",
            f"Indexed: {out.files:,} files, {out.chunks:,} chunks, {out.points:,} points",
            f"Last sync: {last}",
            f"Pending changes: {p.added:,} added, {p.modified:,} modified, {p.deleted:,} deleted",
            f"Owner: {out.owner.description}",
            f"Model: {out.model}",
            f"Storage: {out.storage.mode}, {out.storage.path} "
            f"({size(out.storage.disk_bytes)} on disk)",
        ]
    )


# -- reindex -----------------------------------------------------------------


class ReindexOutput(BaseModel):
    scope: Literal["paths", "full"] = Field(
        description="paths: only the paths asked for were looked at; full: the whole project."
    )
    paths: list[str] = Field(description="The paths asked for, relative to the root.")
    note: str | None = None
    initialized: bool = Field(description="True when this sync created the index.")
    files_scanned: int
    files_added: int
    files_modified: int
    files_deleted: int
    files_unchanged: int
    files_skipped: int
    chunks_embedded: int
    chunks_reused: int
    seconds: float
    warnings: list[str] = Field(description="Files indexed with a caveat, or unreadable.")


def reindex_output(
    summary: IndexSummary, scope: Literal["paths", "full"], paths: list[str], note: str | None
) -> ReindexOutput:
    return ReindexOutput(
        scope=scope,
        paths=paths,
        note=note,
        initialized=summary.initialized,
        files_scanned=summary.files_scanned,
        files_added=summary.files_added,
        files_modified=summary.files_modified,
        files_deleted=summary.files_deleted,
        files_unchanged=summary.files_unchanged,
        files_skipped=summary.files_skipped,
        chunks_embedded=summary.chunks_embedded,
        chunks_reused=summary.chunks_reused,
        seconds=round(summary.seconds, 3),
        warnings=[f"{i.path}: {i.reason} — {i.detail}" for i in summary.warnings[:50]],
    )


def reindex_text(out: ReindexOutput, summary: IndexSummary) -> str:
    what = count(len(out.paths), "path") if out.scope == "paths" else "the whole project"
    lines = [f"Synced {what}: {sync_counts(summary)}."]
    if out.note:
        lines.append(out.note)
    lines += [f"  {w}" for w in out.warnings]
    return "\n".join(lines)
