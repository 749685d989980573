"""Printing collection migrations: the copy's progress bar and the migration's state.

Results on stdout (or JSON with `--json`); progress on stderr, so `--json`
output stays clean. Collection names are the user's text: printed escaped.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress as Bar,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cidx.cli.params import wait_policy
from cidx.cli.render import console, error_console, migration_line, print_json
from cidx.formatting import printable
from cidx.messages import MigrationReport, Progress
from cidx.owner.wire import Verb

A = TypeVar("A")


@contextlib.contextmanager
def migration_bar(enabled: bool = True) -> Iterator[Callable[[Progress], None]]:
    """A callback drawing the backfill's progress (points copied) at a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _p: None
        return
    bar = Bar(
        TextColumn("[bold]Copying points"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=error_console(),
        transient=True,
    )
    task = None

    def update(p: Progress) -> None:
        nonlocal task
        if p.phase != "migrate":
            return
        if task is None:
            bar.start()
            task = bar.add_task("copy", total=max(p.files_total, 1))
        bar.update(task, completed=p.files_done)

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()


def call_migrating(
    verb: Verb[A, MigrationReport],
    request: A,
    *,
    no_wait: bool,
    wait_timeout: float | None,
    as_json: bool,
) -> None:
    """Ask the index's owner for `verb`, which may copy a collection (a bar
    shows the copy), and print the report."""
    from cidx.service import with_index

    with migration_bar(not as_json) as progress:
        report = with_index(
            lambda handle: handle.call(verb, request, progress),
            kind="migrate",
            wait=wait_policy(no_wait, wait_timeout),
        )
    render_migration(report, as_json)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def render_migration(report: MigrationReport, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    out = console()
    if report.done:
        out.print(Text(printable(report.done)))
    view = report.migration
    if view is None:
        if not report.done:
            out.print("No collection migration has run in this index.")
        return
    rows = [
        ("Migration", f"{view.id} (started by {view.started_by}, {_when(view.started_at)})"),
        ("State", migration_line(view)),
        ("Dual writes", "on" if view.dual_write else "off"),
    ]
    if view.cutover_at is not None:
        rows.append(("Cut over", _when(view.cutover_at)))
    if view.cleanup_after is not None and view.ended_at is None:
        rows.append(("Cleanup from", _when(view.cleanup_after)))
    if view.ended_at is not None:
        rows.append(("Ended", _when(view.ended_at)))
    if view.detail:
        rows.append(("Problem", printable(view.detail)))
    if view.next_step:
        rows.append(("Next", view.next_step))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        out.print(Text.assemble((key.ljust(width), "bold"), "  ", printable(value)))
