"""Printing what the storage commands return: migrations, collections, removals.

Results on stdout (or JSON with `--json`); a migration's progress and the
question before a removal on stderr, so that `--json` output stays clean.
Paths and project roots are the user's text: printed as `Text`, escaped.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.text import Text

from cidx.cli.render import console, error_console, note, print_json
from cidx.formatting import printable, size

if TYPE_CHECKING:
    # Types only: every command imports `migrating` (cidx.cli.params), and
    # most never need these modules.
    from cidx.manage import (
        ClearReport,
        CollectionRow,
        CollectionsReport,
        RemovalPlan,
        UninstallReport,
    )
    from cidx.migration import (
        MigrationHistory,
        MigrationProgress,
        MigrationRecord,
        MigrationStatus,
        ResetReport,
    )

# Seconds between two progress lines of a copy.
_COPY_LINE_SECONDS = 2.0
_shown: dict[str, float] = {}


def migrating(p: MigrationProgress) -> None:
    """One line on stderr per step of a migration; a copy's progress at most
    every two seconds."""
    first = p.id not in _shown
    now = time.monotonic()
    if p.phase == "copy" and not first and now - _shown[p.id] < _COPY_LINE_SECONDS:
        return
    _shown[p.id] = now
    if p.phase == "start" and p.done == 0:
        note(f"Moving the index from {p.source} to {p.target} ({p.total:,} points)…")
        return
    if first:
        note(f"Resuming the move of the index from {p.source} to {p.target}…")
    if p.phase in ("start", "copy"):
        note(f"  copied {p.done:,} of {p.total:,} points")
    elif p.phase == "verify":
        note("  verifying the copy (point count and sample queries)…")
    elif p.phase == "done":
        note(f"Moved the index to {p.target} ({p.done:,} points).")
    elif p.phase == "rollback":
        note(f"  the move failed ({p.detail}); rolling it back…")
    elif p.phase == "rolled_back":
        note(f"  rolled back: the index stays in {p.source}.")


# -- collections ------------------------------------------------------------


def _points(row: CollectionRow) -> str:
    return "?" if row.points is None else f"{row.points:,}"


def render_collections(report: CollectionsReport, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    out = console()
    out.print(Text.assemble(("Store ", "bold"), printable(report.store_dir)))
    if not report.collections:
        out.print(Text("No collections.", style="dim"))
        return
    for row in report.collections:
        line = Text("* " if row.current else "  ", style="bold green")
        line.append(row.name, style="bold" if row.current else "")
        line.append(f"  {row.state}  {_points(row)} points  {size(row.disk_bytes)}")
        if row.mode == "global" and row.project_root:
            line.append("  ")
            line.append(printable(row.project_root), style="cyan")
        out.print(line)
    if any(row.points is None and row.state == "in use" for row in report.collections):
        out.print(Text("(?: counted by the project's own index only)", style="dim"))


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "—"
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def render_collection(row: CollectionRow, as_json: bool) -> None:
    if as_json:
        print_json(row)
        return
    rows = [
        ("Collection", row.name),
        ("Storage", f"{row.mode} — {printable(row.path)}"),
        ("State", row.state),
        ("Project", printable(row.project_root) if row.project_root else "—"),
        ("Model", row.model or "—"),
        ("Files", "?" if row.files is None else f"{row.files:,}"),
        ("Points", _points(row)),
        ("Size on disk", size(row.disk_bytes)),
    ]
    if row.mode == "global":
        rows += [("Created", _when(row.created_at)), ("Last used", _when(row.last_used_at))]
    _rows(rows)


def _rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(key) for key, _ in rows)
    out = console()
    for key, value in rows:
        out.print(Text.assemble((key.ljust(width), "bold"), "  ", value))


# -- removals ---------------------------------------------------------------


def render_plan(plan: RemovalPlan) -> None:
    """What is about to be removed, on stderr before the question."""
    err = error_console()
    if plan.action == "uninstall":
        assert plan.index_dir is not None
        err.print(Text(f"This removes the cidx index {printable(plan.index_dir)}"))
    else:
        err.print(Text("This removes every collection in the global store:"))
    for item in plan.collections:
        whose = f" (project {printable(item.project_root)})" if item.project_root else ""
        err.print(Text(f"  {printable(item.path)}{whose}, {size(item.disk_bytes)}"))
    err.print(Text(f"{size(plan.total_bytes)} in all."))


def render_clear(report: ClearReport, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    out = console()
    if not report.removed:
        where = "the global store" if report.scope == "all" else printable(report.root or "")
        out.print(Text(f"No index data to clear in {where}."))
        return
    for item in report.removed:
        out.print(Text(f"Removed {printable(item.path)}"))
    out.print(Text(f"Freed {size(report.freed_bytes)}."))
    if report.scope == "project":
        note("The config and the embedding cache are kept: `cidx index` rebuilds the index.")


def render_uninstall(report: UninstallReport, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    out = console()
    for item in report.removed:
        out.print(Text(f"Removed {printable(item.path)}"))
    out.print(Text(f"Removed {printable(report.index_dir)}; freed {size(report.freed_bytes)}."))


# -- migrations ---------------------------------------------------------------


def _describe(record: MigrationRecord) -> str:
    if record.kind == "config":
        return record.detail or "config schema upgrade"
    copied = f", {record.copied:,} of {record.total:,} points" if record.total is not None else ""
    return (
        f"move {record.source_mode} → {record.target_mode} ({record.source_collection} → "
        f"{record.target_collection}{copied})"
    )


def _record_line(record: MigrationRecord) -> Text:
    line = Text(f"{record.id}  {_when(record.started_at)}  ")
    style = {"done": "green", "rolled_back": "yellow"}.get(record.status, "bold red")
    line.append(f"{record.status:<12}", style=style)
    line.append(f"  {printable(_describe(record))}")
    if record.ended_at is not None:
        line.append(f"  ended {_when(record.ended_at)}", style="dim")
    if record.backup:
        line.append(f"  backup {printable(record.backup)}", style="dim")
    if record.detail and record.kind != "config":
        line.append(f"  ({printable(record.detail)})", style="dim")
    return line


def render_migration_status(status: MigrationStatus, as_json: bool) -> None:
    if as_json:
        print_json(status)
        return
    out = console()
    out.print(
        Text.assemble(
            ("Storage ", "bold"), f"{status.storage_mode} — ", printable(status.storage_path)
        )
    )
    if not status.unfinished and not status.pending:
        out.print(Text("Nothing to migrate."))
        return
    for record in status.unfinished:
        out.print(Text("Unfinished: ", style="bold yellow").append(_record_line(record)))
    for sentence in status.pending:
        out.print(Text("Pending: ", style="bold").append(printable(sentence)))
    out.print(
        Text(
            "The next command that opens the index runs these; `cidx migrations reset` "
            "rolls back instead.",
            style="dim",
        )
    )


def render_history(history: MigrationHistory, as_json: bool) -> None:
    if as_json:
        print_json(history)
        return
    out = console()
    if not history.migrations:
        out.print(Text("No migrations recorded."))
        return
    for record in history.migrations:
        out.print(_record_line(record))


def render_reset(report: ResetReport, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    out = console()
    for action in report.actions or ["Nothing to reset."]:
        out.print(Text(printable(action)))
    out.print(
        Text.assemble(
            ("Storage ", "bold"), f"{report.storage_mode} — ", printable(report.storage_path)
        )
    )
