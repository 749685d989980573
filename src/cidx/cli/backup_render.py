"""Printing what `cidx backup` and `cidx restore` did, and the backups kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from cidx.cli.render import console, print_json, render_warnings
from cidx.formatting import count, duration, printable, size

if TYPE_CHECKING:
    from cidx.backup import BackupInfo, BackupListing, BackupResult, VerifyResult
    from cidx.restore import RestoreResult


def _rate(data_bytes: int, seconds: float) -> str:
    return f"{size(data_bytes / seconds)}/s" if seconds > 0 else "-"


def render_backup(result: BackupResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    out = console()
    what = "the global store in " if result.kind == "global" else ""
    out.print(Text(f"Backed up {what}{printable(result.root)} to {printable(result.archive)}"))
    out.print(
        Text(
            f"  {size(result.bytes)} ({size(result.data_bytes)} of index data, "
            f"{count(result.files, 'file')}, {count(result.points, 'point')}) in "
            f"{duration(result.seconds)}, {_rate(result.data_bytes, result.seconds)}; writes "
            f"held {duration(result.paused_seconds)} ({result.copy_method})",
            style="dim",
        )
    )
    for path in result.pruned:
        out.print(Text(f"  removed the older backup {printable(path)}", style="dim"))
    render_warnings(result.problems)


def render_restore(result: RestoreResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    out = console()
    what = "Replaced" if result.replaced else "Restored"
    whose = "the global store in" if result.kind == "global" else "the index of"
    out.print(Text(f"{what} {whose} {printable(result.root)} from {printable(result.archive)}"))
    out.print(
        Text(
            f"  {count(result.points, 'point')} in {count(len(result.collections), 'collection')}"
            f", {size(result.data_bytes)}, checked and swapped in {duration(result.seconds)}",
            style="dim",
        )
    )
    if result.moved_from is not None:
        out.print(
            Text(f"  moved from {printable(result.moved_from)}; config fixed for here", style="dim")
        )
    if result.kind == "project" and result.storage_mode == "global":
        out.print(Text("  its collections are back in the global store, registered", style="dim"))
    if result.kind == "project" and result.storage_mode == "server":
        names = ", ".join(c.name for c in result.collections)
        out.print(
            Text(
                f"  uploaded to the Qdrant server as {printable(names)} (new collections, "
                "counted and queried before the old one went)",
                style="dim",
            )
        )
    if result.converted_from == "server":
        out.print(
            Text(
                "  backed up on a Qdrant server: restored here in local mode (inside "
                ".code-indexer/), every point included; `cidx storage migrate --to server "
                "--qdrant-url URL` moves it to a server",
                style="dim",
            )
        )
    elif result.converted:
        out.print(
            Text(
                "  backed up in global storage mode elsewhere: restored here in local mode "
                "(inside .code-indexer/); `cidx init --storage global` moves it to the "
                "global store",
                style="dim",
            )
        )
    render_warnings(result.problems)


def _describe(info: BackupInfo) -> Text:
    line = Text(printable(info.path), style="bold")
    if info.problem is not None:
        line.append(f"  {size(info.bytes)}  unreadable: {printable(info.problem)}", style="red")
        return line
    what = printable(info.project_root or "") if info.kind == "project" else "global store"
    line.append(
        f"\n  {info.created_at}  {what}  {size(info.bytes)}  {count(info.points, 'point')}  "
        f"{info.model_id}  cidx {info.cidx_version}, format {info.format_version}",
        style="dim",
    )
    return line


def render_listing(listing: BackupListing, as_json: bool) -> None:
    if as_json:
        print_json(listing)
        return
    out = console()
    if not listing.backups:
        out.print(Text(f"No backups in {printable(listing.folder)}."))
        return
    out.print(Text(f"{count(len(listing.backups), 'backup')} in {printable(listing.folder)}:"))
    for info in listing.backups:
        out.print(_describe(info))


def render_verify(result: VerifyResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    out = console()
    out.print(_describe(result.info))
    out.print(
        Text(
            f"OK: {count(result.files, 'file')} ({size(result.data_bytes)}) match their sha256, "
            f"read in {duration(result.seconds)}",
            style="green",
        )
    )
