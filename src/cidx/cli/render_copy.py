"""Printing what the copy commands did: force-flush, pause, resume, clone, fix-config.

Same rules as `cidx.cli.render`: results on stdout, plain lines, user text
never parsed as markup.
"""

from __future__ import annotations

from rich.text import Text

from cidx.cli.render import console, pause_line, print_json
from cidx.formatting import count, duration, printable, size
from cidx.messages import (
    CloneResult,
    FixReport,
    FlushReport,
    PauseState,
    ResumeResult,
)


def _line(text: str, style: str = "") -> None:
    console().print(Text(printable(text), style=style))


def render_flush(report: FlushReport, as_json: bool) -> None:
    if as_json:
        print_json({"ok": report.ok, **_as_dict(report)})
        return
    for c in report.collections:
        if c.error is None:
            points = "?" if c.points is None else f"{c.points:,}"
            _line(f"flushed  {c.collection}: {points} points ({duration(c.seconds)})")
        else:
            _line(f"FAILED   {c.collection}: {c.error}", "bold red")
    state = report.state
    if state.error is not None:
        _line(f"FAILED   state database {state.path}: {state.error}", "bold red")
    elif state.complete:
        _line(f"flushed  state database: {count(state.checkpointed, 'page')} written back")
    else:
        _line(
            f"partly   state database: {state.checkpointed:,} of {state.wal_frames:,} pages "
            "written back (a reader kept the rest; the database is consistent)"
        )
    verdict = "durable on disk" if report.ok else "NOT all flushed"
    _line(f"{report.root}: {verdict} in {duration(report.seconds)}", "bold")


def _as_dict(value: object) -> dict[str, object]:
    from cidx.owner.wire import to_jsonable

    data = to_jsonable(value)
    assert isinstance(data, dict)
    return data


def render_pause(state: PauseState, as_json: bool) -> None:
    if as_json:
        print_json(state)
        return
    hold = next((h for h in state.holds if h.until), None)
    if state.flush is not None:
        flushed = sum(1 for c in state.flush.collections if c.error is None)
        _line(f"Flushed {count(flushed, 'collection')} and the state database.")
    if hold is not None:
        _line(
            f"Paused the index of {state.root} until {hold.until} "
            f"({duration(hold.seconds_left)}), held by pid {state.pid}. Queries are still "
            "answered; changes wait. `cidx resume` ends the pause.",
            "bold",
        )


def render_resume(result: ResumeResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    if result.pid is None:
        _line(f"The index of {result.root} was not paused (no process holds it).")
        return
    if not result.released:
        _line(f"The index of {result.root} was not paused.")
    else:
        who = ", ".join(f"`{h.by}` (pid {h.pid})" for h in result.released)
        _line(f"Resumed the index of {result.root} (paused by {who}).", "bold")
    for hold in result.remaining:
        _line(f"Still paused {pause_line(hold)}")


def render_fix(report: FixReport, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    if report.finished_interrupted:
        _line("Finished a `cidx fix-config` that was interrupted.")
    if report.kind == "none" and not report.changes:
        _line(f"{report.root}: the config matches where the project is; nothing to fix.")
        return
    _line(report.reason)
    verb = "Would change" if report.dry_run else "Changed"
    for change in report.changes:
        _line(f"{verb} {change.field}: {change.old} → {change.new}")
    if report.backup:
        _line(f"The previous config is kept in {report.backup}.")
    check = report.verification
    if check is not None:
        text = f"Checked: {check.files:,} files, {check.chunks:,} chunks"
        if check.points is not None:
            text += f", {check.points:,} points"
        if check.query is not None:
            found = "found its chunk" if check.query_found else "did NOT find its chunk"
            text += f"; the sample query {check.query!r} {found}"
        _line(text + ".")
        for problem in check.problems:
            _line(f"problem: {problem}", "bold red")
    if report.dry_run:
        _line("Nothing was changed (--dry-run). Run `cidx fix-config` to apply it.")


def render_clone(result: CloneResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    files = result.files_cloned + result.files_copied
    how = {
        "copy-on-write": "copy-on-write (reflinks: no data was copied)",
        "plain copy": "a plain copy (this filesystem cannot share blocks between files)",
    }.get(result.method, result.method)
    _line(f"Cloned {result.source} → {result.target}", "bold")
    _line(f"  {count(files, 'file')}, {size(result.bytes)}, by {how}")
    who = (
        f"its owner {result.paused_owner} was paused"
        if result.paused_owner
        else "its lock was held (no process had it open)"
    )
    _line(f"  The source was still for {duration(result.pause_seconds)}: {who}.")
    fix = result.fix
    new_id = next((c.new for c in fix.changes if c.field == "identity"), None)
    if new_id is not None:
        _line(f"  The clone is a project of its own: identity {new_id}.")
    check = fix.verification
    if check is not None:
        _line(f"  Its index: {check.files:,} files, {check.chunks:,} chunks.")
        for problem in check.problems:
            _line(f"  problem: {problem}", "bold red")
    _line(f"Done in {duration(result.seconds)}.")
