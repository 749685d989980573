"""`cidx clone SRC DST`: copy an indexed project as a new, independent project."""

from __future__ import annotations

from pathlib import Path

import typer

from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, wait_policy
from cidx.cli.render_copy import render_clone
from cidx.clone import clone_project


def register(app: typer.Typer) -> None:
    app.command("clone")(clone)


def clone(
    source: Path = typer.Argument(..., metavar="SRC", help="The indexed project to copy."),
    target: Path = typer.Argument(..., metavar="DST", help="Where the copy goes (must not exist)."),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Copy a project with its index — by copy-on-write where the filesystem
    can (XFS reflink, btrfs, ZFS, APFS), a plain copy elsewhere — and make the
    copy a project of its own.

    SRC is paused (or held) for the length of the copy and resumed after;
    on any failure SRC is untouched and nothing is left at DST.
    """
    result = clone_project(source, target, wait=wait_policy(no_wait, wait_timeout))
    render_clone(result, as_json)
