"""Printing `cidx doctor`'s report: one line per check, then what was repaired."""

from __future__ import annotations

from rich.text import Text

from cidx.cli.render import console, print_json
from cidx.doctor import DoctorReport

_MARKS = {
    "ok": ("ok", "green"),
    "warning": ("warning", "yellow"),
    "problem": ("PROBLEM", "bold red"),
    "repaired": ("repaired", "cyan"),
    "skipped": ("skipped", "dim"),
}


def render_doctor(report: DoctorReport, as_json: bool) -> None:
    if as_json:
        data = print_json_data(report)
        print_json(data)
        return
    out = console()
    out.print(Text(f"Index: {report.index_dir}", style="bold"))
    width = max(len(c.name) for c in report.checks)
    for check in report.checks:
        label, style = _MARKS[check.status]
        line = Text(f"  {check.name:<{width}}  ")
        line.append(f"{label:<8}", style=style)
        line.append(f"  {check.detail}")
        out.print(line)
        if check.next_step and check.status in ("problem", "warning", "skipped"):
            out.print(Text(f"  {'':<{width}}  {'':<8}  → {check.next_step}", style="dim"))
    for action in report.actions:
        out.print(Text(f"Repair: {action}"))
    if report.healthy:
        out.print(Text("The index is healthy.", style="green"))
    elif not report.repair:
        out.print(Text("Run `cidx doctor --repair` to fix what can be fixed.", style="bold"))
    else:
        out.print(Text("Some problems remain: see the steps above.", style="bold red"))


def print_json_data(report: DoctorReport) -> dict[str, object]:
    from cidx.owner.wire import to_jsonable

    data: dict[str, object] = to_jsonable(report)
    data["healthy"] = report.healthy
    return data
