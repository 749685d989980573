"""`cidx collections list|info`: the collections of the project's store, and whose they are."""

from __future__ import annotations

import typer

from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, flag, wait_policy
from cidx.cli.storage_render import render_collection, render_collections

collections_app = typer.Typer(
    name="collections",
    help="List and inspect index collections, in the project's store or the global store.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    app.add_typer(collections_app)


@collections_app.command("list")
def list_(
    global_store: bool = flag(
        "--global", help="List the global store (every project's) from a local project too."
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """List the collections of this project's store (in global mode, or outside a
    project: every collection in the global store and the project each belongs to)."""
    from cidx.manage import list_collections

    report = list_collections(global_store=global_store, wait=wait_policy(no_wait, wait_timeout))
    render_collections(report, as_json)


@collections_app.command("info")
def info(
    name: str = typer.Argument(
        None, metavar="[NAME]", help="A collection's name; this project's if none."
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Show one collection: where it is, whose it is, its points and size on disk."""
    from cidx.manage import collection_info

    row = collection_info(name=name, wait=wait_policy(no_wait, wait_timeout))
    render_collection(row, as_json)
