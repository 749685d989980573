"""Printing what the daemon commands return (`cidx start`, `stop`, `status --daemon`,
and `cidx watch` answered by the daemon)."""

from __future__ import annotations

from rich.text import Text

from cidx.cli.render import console, note, print_json
from cidx.daemon import DaemonReport, HeldProject, StartResult, StopResult, WatchResult
from cidx.formatting import duration, printable, size


def render_start(result: StartResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    out = console()
    verb = "Started" if result.started else "Already running:"
    out.print(
        Text(
            f"{verb} the cidx daemon (pid {result.pid}, {_cap(result.cpu_cap_percent)}); "
            f"log: {printable(result.log_file)}"
        )
    )
    for watch in result.watching:
        render_watch(watch, False)


def _cap(percent: float) -> str:
    if percent >= 100:
        return "background indexing not capped"
    return f"background indexing capped at {percent:g} % of the CPU"


def render_stop(result: StopResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    if not result.running:
        note("No cidx daemon runs.")
        return
    count = len(result.released)
    console().print(
        Text(
            f"Stopped the cidx daemon (pid {result.pid}): {count} "
            f"index{'es' if count != 1 else ''} flushed and released."
        )
    )


def render_watch(result: WatchResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    root = printable(result.root)
    if result.watched:
        what = "now keeps" if result.changed else "already keeps"
        line = f"The cidx daemon (pid {result.pid}) {what} {root} live."
    else:
        what = "no longer keeps" if result.changed else "was not keeping"
        line = f"The cidx daemon (pid {result.pid}) {what} {root} live."
    console().print(Text(line))
    if result.error:
        note(f"{result.state}: {result.error}")


def render_daemon(report: DaemonReport, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    out = console()
    state = report.daemon
    if state is None:
        out.print(Text("The cidx daemon is not running (`cidx start` starts it)."))
        return
    out.print(
        Text(
            f"The cidx daemon runs: pid {state.pid}, up {duration(state.uptime_seconds)}, "
            f"{size(state.rss_bytes)} resident, {_cap(state.cpu_cap_percent)}; idle projects "
            f"released after {duration(state.idle_release_seconds)}."
        )
    )
    out.print(Text(f"log: {printable(state.log_file)}", style="dim"))
    if not state.projects:
        out.print(Text("It holds no project.", style="dim"))
    for project in state.projects:
        out.print(_project_line(project))
        if project.error:
            out.print(Text(f"    {printable(project.error)}", style="red"))


def _project_line(project: HeldProject) -> Text:
    used = (
        "unused since taken"
        if project.idle_seconds is None
        else f"last used {duration(project.idle_seconds)} ago"
    )
    if project.idle_seconds == 0:
        used = "in use"
    watched = "watched" if project.watched else "not watched"
    style = "red" if project.state == "failed" else "bold"
    return Text.assemble(
        "  ", (printable(project.root), style), f"  {project.state}, {watched}, {used}"
    )
