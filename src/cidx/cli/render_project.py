"""Printing a project's identity, its planned or done moves, and its aliases."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from rich.text import Text

from cidx.cli.render import console, print_json
from cidx.formatting import printable
from cidx.renaming import Alias, ProjectInfo, RemoteUpdate

SOURCES = {
    "config": "set in the project's config (project_id)",
    "git-remote": "from the git remote",
    "path": "from the project's path (no git remote)",
    "legacy": "a random id from before ids were derived",
}


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def render_info(info: ProjectInfo, as_json: bool) -> None:
    if as_json:
        print_json(info)
        return
    rows = [
        ("Project root", printable(info.root)),
        ("Project id", f"{info.id} ({SOURCES.get(info.source, info.source)})"),
    ]
    if info.changed:
        origin = f" {info.remote!r}" if info.remote else ""
        rows.append(
            (
                "Id now",
                f"{info.derived_id} ({SOURCES.get(info.derived_source, info.derived_source)}"
                f"{origin}) — `cidx project update-remote` moves the data to it",
            )
        )
    rows.append(("Collection", info.collection))
    if len(info.collections) > 1:
        rows.append(("Collections", ", ".join(info.collections)))
    rows.append(("Aliases", ", ".join(f"{a.name} → {a.target}" for a in info.aliases) or "none"))
    _rows(rows)


def render_update(update: RemoteUpdate, as_json: bool, *, dry_run: bool) -> None:
    if as_json:
        print_json(update)
        return
    out = console()
    if update.status == "unchanged":
        out.print(Text(f"Nothing to move: the project id is still {update.new_id}."))
        return
    head = "Would move" if dry_run else "Moved"
    out.print(Text(f"{head} the project from id {update.old_id} to {update.new_id}:"))
    for move in update.moves:
        note = " (an alias keeps the old name working)" if not dry_run else ""
        out.print(Text(f"  {move.old} → {move.new}{note}"))
    for name in update.replaced:
        out.print(Text(f"  replaced the existing collection {name}", style="yellow"))


def render_aliases(aliases: list[Alias], fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps([a.__dict__ for a in aliases], indent=2) + "\n")
        return
    out = console()
    if fmt == "simple":
        for alias in aliases:
            out.print(Text(f"{alias.name} {alias.target}"))
        return
    if not aliases:
        out.print(Text("No aliases.", style="dim"))
        return
    for alias in aliases:
        out.print(Text.assemble((alias.name, "bold"), " → ", alias.target))
        out.print(
            Text(
                f"  by {alias.created_by}, {_when(alias.created_at)}: {alias.reason}; "
                f"last used {_when(alias.last_used_at)}",
                style="dim",
            )
        )


def render_alias(alias: Alias, verb: str, as_json: bool) -> None:
    if as_json:
        print_json(alias)
        return
    console().print(Text(f"{verb} the alias {alias.name} → {alias.target}."))


def _rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(key) for key, _ in rows)
    out = console()
    for key, value in rows:
        out.print(Text.assemble((key.ljust(width), "bold"), "  ", value))
