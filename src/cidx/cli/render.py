"""Printing typed results: for a person (rich), or as JSON with `--json`.

Results go to stdout; progress, notes and errors go to stderr, so
`cidx query ... --json | jq` always sees clean JSON.
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from typing import Any

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from cidx.messages import (
    IndexSummary,
    InitResult,
    QueryAnswer,
    StatusReport,
)
from cidx.owner.lock import OwnerInfo
from cidx.owner.protocol import to_jsonable

SNIPPET_LINES = 12


@cache
def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@cache
def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), ensure_ascii=False, indent=2) + "\n")


def note(message: str) -> None:
    error_console().print(message, style="dim", soft_wrap=True)


def waiting(owner: OwnerInfo | None) -> None:
    who = owner.describe() if owner else "another cidx process"
    note(f"Waiting for {who}, which is using this project's index…")


def size_text(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- init / index -----------------------------------------------------------


def render_init(result: InitResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    if result.replaced:
        verb = "Replaced the index"
    elif result.created:
        verb = "Initialised"
    else:
        verb = "Already initialised"
    console().print(
        f"{verb}: {result.index_dir} (model {result.model}, files up to "
        f"{size_text(result.max_file_size)})"
    )


def summary_json(summary: IndexSummary) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable(summary)
    data["files_changed"] = summary.files_changed
    return data


def summary_line(summary: IndexSummary) -> str:
    parts = [
        f"{summary.files_scanned:,} files scanned",
        f"{summary.files_added:,} added",
        f"{summary.files_modified:,} modified",
        f"{summary.files_deleted:,} deleted",
        f"{summary.files_skipped:,} skipped",
    ]
    chunks = f"chunks: {summary.chunks_embedded:,} embedded, {summary.chunks_reused:,} from cache"
    head = "Rebuilt" if summary.rebuilt else ("Indexed" if summary.initialized else "Synced")
    return f"{head}: {', '.join(parts)}; {chunks}; {summary.seconds:.2f} s"


def render_summary(summary: IndexSummary, as_json: bool, *, verbose: bool = False) -> None:
    if as_json:
        print_json(summary_json(summary))
        return
    out = console()
    out.print(summary_line(summary))
    _render_issues(out, summary, verbose)


def _render_issues(out: Console, summary: IndexSummary, verbose: bool) -> None:
    issues = [*summary.skipped, *summary.warnings]
    if not issues:
        return
    shown = issues if verbose else [i for i in issues if i.reason not in ("binary", "too_large")]
    hidden = len(issues) - len(shown)
    for issue in shown[:50]:
        out.print(f"  [yellow]{issue.reason}[/]: {issue.path} — {issue.detail}", highlight=False)
    more = len(shown) - 50 if len(shown) > 50 else 0
    if more or hidden:
        out.print(
            f"  … and {more + hidden:,} more (binary or too large); "
            "`cidx index --verbose` lists them",
            style="dim",
        )


def render_sync_note(summary: IndexSummary | None) -> None:
    """One line on stderr when a query's pre-search sync changed something."""
    if summary is None:
        return
    if summary.changed_anything:
        note(summary_line(summary))
        for issue in summary.warnings[:10]:
            note(f"  {issue.reason}: {issue.path} — {issue.detail}")


# -- query ------------------------------------------------------------------


def render_results(answer: QueryAnswer, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(
            json.dumps([r.as_json() for r in answer.results], ensure_ascii=False, indent=2) + "\n"
        )
        return
    out = console()
    if not answer.results:
        out.print("No results.", style="dim")
        return
    terms = query_terms(answer.query)
    for rank, r in enumerate(answer.results, 1):
        header = Text()
        header.append(f"{rank:>2}. ", style="dim")
        header.append(f"{r.path}:{r.start_line}-{r.end_line}", style="bold cyan")
        header.append(f"  {r.score:.4f}", style="green")
        if r.symbol:
            header.append(f"  {r.symbol}", style="bold magenta")
        header.append(f"  [{r.kind}]", style="dim")
        out.print(header)
        if r.also:
            where = ", ".join(f"{a.path}:{a.start_line}-{a.end_line}" for a in r.also)
            out.print(Text(f"    also in {where}", style="dim"))
        first, lines = snippet(r.text, r.start_line, terms)
        out.print(
            Syntax(
                "\n".join(lines),
                _lexer(r.language),
                line_numbers=True,
                start_line=first,
                word_wrap=False,
                theme="ansi_dark",
                background_color="default",
                highlight_lines=_matching_lines(lines, first, terms),
            )
        )
        out.print()


def render_batch(answers: list[QueryAnswer]) -> None:
    write = sys.stdout.write
    for answer in answers:
        write(json.dumps(answer.as_json(), ensure_ascii=False) + "\n")


def query_terms(query: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z0-9_]{3,}", query)}


def snippet(
    text: str, start_line: int, terms: set[str], max_lines: int = SNIPPET_LINES
) -> tuple[int, list[str]]:
    """The window of `max_lines` lines with the most query terms (first line on ties)."""
    lines = text.split("\n")
    if len(lines) <= max_lines:
        return start_line, lines
    hits = [sum(1 for t in terms if t in line.lower()) for line in lines]
    best, best_score = 0, sum(hits[:max_lines])
    score = best_score
    for i in range(1, len(lines) - max_lines + 1):
        score += hits[i + max_lines - 1] - hits[i - 1]
        if score > best_score:
            best, best_score = i, score
    # Keep the definition's first line in view when the best window is near it.
    if best <= 2:
        best = 0
    return start_line + best, lines[best : best + max_lines]


def _matching_lines(lines: list[str], first: int, terms: set[str]) -> set[int]:
    return {first + i for i, line in enumerate(lines) if any(t in line.lower() for t in terms)}


_LEXERS = {"tsx": "tsx", "csharp": "csharp", "cpp": "cpp", "text": "text", "bash": "bash"}


def _lexer(language: str) -> str:
    return _LEXERS.get(language, language or "text")


# -- status -----------------------------------------------------------------


_ONE_SHOT = {"status", "query", "index", "init"}


def render_status(report: StatusReport, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Project root", report.root)
    table.add_row("Storage", f"{report.storage_mode} — {report.storage_path}")
    table.add_row("Model", report.model)
    table.add_row("Files", f"{report.files:,}")
    table.add_row("Chunks", f"{report.chunks:,}")
    table.add_row("Points", f"{report.points:,}")
    table.add_row("Size on disk", size_text(report.disk_bytes))
    pending = report.pending
    if pending.total:
        changes = (
            f"{pending.total:,} ({pending.added:,} new, {pending.modified:,} modified, "
            f"{pending.deleted:,} deleted) — `cidx index` updates the index"
        )
    else:
        changes = "none"
    table.add_row("Changed since index", changes)
    if report.last_index_at:
        took = f" (took {report.last_index_seconds:.2f} s)" if report.last_index_seconds else ""
        table.add_row("Last indexed", f"{report.last_index_at}{took}")
    else:
        table.add_row("Last indexed", "never — run `cidx index`")
    # A one-shot command answering its own status is not worth a line.
    if report.owner_pid and report.owner_kind not in _ONE_SHOT:
        table.add_row("Owner", f"`cidx {report.owner_kind}` (pid {report.owner_pid})")
    console().print(table)
