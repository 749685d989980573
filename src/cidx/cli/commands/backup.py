"""`cidx backup`: the project's index as one archive; `backup list` and `backup verify`.

The core and its renderer are imported when a command runs, not when the
`cidx` command starts: the archive format (pydantic models, zstd) would
otherwise add to the start-up of every command.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, flag, wait_policy

group = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="backup")


@group.callback()
def backup(
    ctx: typer.Context,
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        metavar="PATH",
        help="A folder to write the backup into, or the archive's name (ending .tar.zst). "
        "Default: the backups folder in cidx's data folder.",
    ),
    keep: int | None = typer.Option(
        None,
        "--keep",
        metavar="N",
        help="Then remove the oldest backups of this project (or, with --global, of the "
        "global store) in that folder beyond N.",
    ),
    global_store: bool = flag(
        "--global",
        help="Back up the global store instead: every project's collection in global "
        "storage mode, and its registry.",
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Back up the index (config, state, every collection) into one checked archive.

    A running `cidx watch` keeps answering queries; its writes wait while the
    index is copied (cloned where the filesystem can, which is quickest).
    """
    if ctx.invoked_subcommand is not None:
        return
    from cidx.backup import backup_project
    from cidx.cli.backup_render import render_backup
    from cidx.global_backup import backup_global

    wait = wait_policy(no_wait, wait_timeout)
    if global_store:
        result = backup_global(output, keep, wait=wait)
    else:
        result = backup_project(output=output, keep=keep, wait=wait)
    render_backup(result, as_json)


@group.command("list")
def list_backups(
    folder: str | None = typer.Argument(
        None, metavar="DIR", help="The folder to look in. Default: the backups folder."
    ),
    as_json: bool = JSON,
) -> None:
    """Show the backups in a folder, newest first, with what each holds."""
    from cidx import backup as core
    from cidx.cli.backup_render import render_listing

    render_listing(core.list_backups(Path(folder) if folder else None), as_json)


@group.command("verify")
def verify(
    archive: str = typer.Argument(..., metavar="ARCHIVE", help="The backup to check."),
    as_json: bool = JSON,
) -> None:
    """Read a backup to its end and check every file's sha256, writing nothing."""
    from cidx import backup as core
    from cidx.cli.backup_render import render_verify

    render_verify(core.verify_backup(Path(archive)), as_json)
