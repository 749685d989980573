"""Printing typed results: for a person (rich), or as JSON with `--json`.

Results go to stdout; progress, notes and errors go to stderr, so
`cidx query ... --json | jq` always sees clean JSON. The consoles never
parse markup: paths, symbols, snippets and queries are the user's text and
are printed as they are, with control characters escaped (`printable`).
Styles are applied with `Text` only. A query's results are written by
`cidx.cli.render_hits`, without rich, so that the short way to an owner
(`cidx.cli.thin`) prints them without loading it.

Paths read as `git grep` shows them: relative to the folder the command was
run in. JSON keeps them relative to the project root and names the root.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from functools import cache
from typing import Any

from rich.console import Console
from rich.text import Text

from cidx.cli.render_answers import write_json
from cidx.cli.render_hits import PathView, path_view, write_results
from cidx.formatting import duration, printable, size, sync_line
from cidx.messages import (
    FileIssue,
    IndexSummary,
    InitResult,
    MigrationView,
    PauseHold,
    SearchOutcome,
    StatusReport,
)
from cidx.owner.lock import OwnerInfo
from cidx.owner.wire import to_jsonable

# Output that is not a terminal (a pipe, a file, an agent) is never cut to
# an assumed 80 columns.
_PIPE_WIDTH = 4096


@cache
def console() -> Console:
    width = None if sys.stdout.isatty() else _PIPE_WIDTH
    return Console(highlight=False, soft_wrap=True, markup=False, emoji=False, width=width)


@cache
def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), ensure_ascii=False, indent=2) + "\n")


def note(message: str) -> None:
    error_console().print(Text(printable(message), style="dim"))


def error(message: str) -> None:
    """The one way an error is printed: `error: ` and the message, on stderr."""
    error_console().print(Text.assemble(("error: ", "bold red"), printable(message)))


def waiting(owner: OwnerInfo | None) -> None:
    if owner is None:
        note(
            "Waiting for another cidx process, which is using this project's index "
            "(Ctrl-C stops waiting)…"
        )
        return
    note(
        f"Waiting for {owner.describe()}, which is using this project's index. Stop it "
        f"(`kill {owner.pid}`) or press Ctrl-C to stop waiting…"
    )


# -- init / index -----------------------------------------------------------


def render_init(result: InitResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    if result.replaced:
        verb = "Replaced the index"
    elif result.created:
        verb = "Initialised"
    elif result.previous_storage_mode is not None:
        verb = "Moved the index"
    elif result.previous_max_file_size is not None:
        verb = "Updated"
    else:
        verb = "Already initialised"
    line = Text(f"{verb}: ")
    line.append(printable(result.index_dir))
    limit = f"files up to {size(result.max_file_size)}"
    if result.previous_max_file_size is not None:
        limit += f", was {size(result.previous_max_file_size)}; the next `cidx index` applies it"
    line.append(f" (model {result.model}, {limit})")
    if result.storage_mode != "local":
        line.append(f", stored on {printable(result.storage_path)}")
    console().print(line)
    storage = Text(f"Storage: {result.storage_mode} — ")
    storage.append(printable(result.storage_path))
    if result.previous_storage_mode is not None:
        storage.append(f" (moved from {result.previous_storage_mode} storage)")
    console().print(storage)


def summary_json(summary: IndexSummary) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable(summary)
    data["files_changed"] = summary.files_changed
    return data


def render_summary(
    summary: IndexSummary, as_json: bool, *, verbose: bool = False, view: PathView | None = None
) -> None:
    if as_json:
        print_json(summary_json(summary))
        return
    out = console()
    out.print(Text(sync_line(summary)))
    render_warnings(summary.repairs, "repaired")
    _render_issues(out, summary, verbose, view)


def render_warnings(lines: list[str], label: str = "warning") -> None:
    """Damage found or repaired, one line each on stderr (plain text, never markup)."""
    for line in lines:
        text = Text(f"{label}: ", style="bold yellow")
        text.append(printable(line))
        error_console().print(text)


def _issue_line(reason: str, path: str, detail: str, view: PathView | None) -> Text:
    return Text.assemble(
        "  ",
        (reason, "yellow"),
        ": ",
        view.show(path) if view is not None else printable(path),
        " — ",
        printable(detail),
    )


# Skipped on purpose and common in any project: counted, and listed by name
# only with --verbose.
_QUIET_REASONS = ("binary", "too_large")
_LISTED = 50


def _by_reason(issues: list[FileIssue]) -> str:
    """ "2 symlink_loop, 1 binary": how many per reason, most first."""
    counts = sorted(Counter(issue.reason for issue in issues).items(), key=lambda c: (-c[1], c[0]))
    return ", ".join(f"{n:,} {reason}" for reason, n in counts)


def _render_issues(
    out: Console, summary: IndexSummary, verbose: bool, view: PathView | None
) -> None:
    for label, group in (("skipped", summary.skipped), ("failed", summary.failed)):
        if group:
            out.print(Text(f"  {label}: {_by_reason(group)}"))
    issues = [*summary.failed, *summary.skipped, *summary.warnings]
    shown = issues if verbose else [i for i in issues if i.reason not in _QUIET_REASONS]
    listed = shown if verbose else shown[:_LISTED]
    for issue in listed:
        out.print(_issue_line(issue.reason, issue.path, issue.detail, view))
    rest = len(issues) - len(listed)
    if rest:
        quiet = " (binary or too large)" if len(shown) == len(listed) else ""
        out.print(
            Text(f"  … and {rest:,} more{quiet}; `cidx index --verbose` lists them", style="dim")
        )


def render_sync_note(summary: IndexSummary | None, view: PathView | None = None) -> None:
    """One line on stderr when a query's pre-search sync changed something."""
    if summary is None:
        return
    if summary.changed_anything:
        note(sync_line(summary))
        render_warnings(summary.repairs, "repaired")
        for issue in [*summary.failed, *summary.warnings][:10]:
            error_console().print(_issue_line(issue.reason, issue.path, issue.detail, view))


# -- query ------------------------------------------------------------------


def render_outcome(outcome: SearchOutcome, root: str, *, as_json: bool, batch: bool) -> None:
    """A search's answers: one (human or JSON), or JSON Lines for `--batch`."""
    view = path_view(root)
    if outcome.read_only:
        note(
            f"The index of {root} is read-only for you: searched as it is, without "
            "syncing changed files first."
        )
    render_sync_note(outcome.sync, view)
    render_warnings(outcome.warnings)
    if batch or as_json:
        write_json(outcome, root, batch=batch)
        return
    write_results(outcome.answers[0], view)


def _chunks(report: StatusReport) -> str:
    left = report.chunks_pending
    if not left:
        return f"{report.chunks:,}"
    done = (report.chunks - left) / report.chunks if report.chunks else 1.0
    return (
        f"{report.chunks:,} ({done:.0%} with semantic vectors; {left:,} to embed, "
        "keyword search covers all)"
    )


# -- status -----------------------------------------------------------------


_ONE_SHOT = {"status", "query", "index", "init"}


def pause_line(hold: PauseHold) -> str:
    """One pause of an index, for `cidx status` and `cidx resume`."""
    return (
        f"by `{hold.by}` (pid {hold.pid}) since {hold.since}, until {hold.until} "
        f"({duration(hold.seconds_left)} left) — `cidx resume` ends it"
    )


def migration_line(view: MigrationView) -> str:
    """A collection migration in one line: where it is and how far."""
    total = f" of {view.total:,}" if view.total is not None else ""
    reembed = (
        f", re-embedding for {view.target_model}" if view.target_model != view.source_model else ""
    )
    queued = f", {view.queued:,} writes queued" if view.queued else ""
    source, target = view.source, view.target
    if view.source_place and view.target_place:
        source, target = f"{source} ({view.source_place})", f"{target} ({view.target_place})"
    return printable(
        f"{source} → {target}: {view.phase} ({view.copied:,}{total} points copied"
        f"{reembed}{queued}; reads from {view.reads})"
    )


def render_status(report: StatusReport, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    files = (
        f"{report.files:,} indexed, {report.files_empty:,} empty, "
        f"{report.files_skipped:,} skipped, {report.files_failed:,} failed"
    )
    if report.files_skipped or report.files_failed:
        files += " — `cidx index --verbose` lists why"
    rows: list[tuple[str, str]] = [
        ("Project root", printable(report.root)),
        (
            "Project id",
            report.project_id
            + (
                f" — the git remote now says {report.project_id_now}: "
                "`cidx project update-remote` moves the index to it"
                if report.project_id_now
                else ""
            ),
        ),
        ("Storage", f"{report.storage_mode} — {printable(report.storage_path)}"),
        ("Model", report.model),
        ("Files", files),
        ("Chunks", _chunks(report)),
        ("Points", f"{report.points:,}"),
        ("Size on disk", size(report.disk_bytes)),
    ]
    pending = report.pending
    if report.read_only:
        changes = f"{pending.total:,} (the index is read-only for you: it cannot be updated)"
    elif pending.total:
        changes = (
            f"{pending.total:,} ({pending.added:,} new, {pending.modified:,} modified, "
            f"{pending.deleted:,} deleted) — `cidx index` updates the index"
        )
    else:
        changes = "none"
    rows.append(("Changed since index", changes))
    if report.last_index_at:
        took = f" (took {report.last_index_seconds:.2f} s)" if report.last_index_seconds else ""
        rows.append(("Last indexed", f"{report.last_index_at}{took}"))
    else:
        rows.append(("Last indexed", "never — run `cidx index`"))
    rows.extend(("Problem", printable(problem)) for problem in report.problems)
    rows.extend(("Paused", pause_line(hold)) for hold in report.pauses)
    if report.migration is not None:
        rows.append(("Migration", migration_line(report.migration)))
    # A one-shot command answering its own status is not worth a line.
    if report.owner_pid and report.owner_kind not in _ONE_SHOT:
        rows.append(("Owner", f"`cidx {report.owner_kind}` (pid {report.owner_pid})"))
    # Plain lines, never a table: a table fits itself to the terminal and
    # would cut paths when the output is piped.
    width = max(len(key) for key, _ in rows)
    out = console()
    for key, value in rows:
        out.print(Text.assemble((key.ljust(width), "bold"), "  ", value))
