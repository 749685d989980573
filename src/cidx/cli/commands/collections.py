"""`cidx collections list|info` and `cidx collections alias create|delete`.

The collections of the project's store (or the global store) and whose they
are; aliases made by hand.
"""

from __future__ import annotations

import typer

from cidx import renaming
from cidx.cli import render_project
from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, flag, wait_policy
from cidx.cli.storage_render import render_collection, render_collections
from cidx.project import project_paths

collections_app = typer.Typer(
    help="List and inspect index collections, in the project's store or the global store; aliases.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
alias_app = typer.Typer(
    rich_markup_mode=None, help="Aliases: another name for a collection.", no_args_is_help=True
)
collections_app.add_typer(alias_app, name="alias")


def register(app: typer.Typer) -> None:
    app.add_typer(collections_app, name="collections")


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


@alias_app.command("create")
def create(
    name: str = typer.Argument(..., metavar="NAME", help="The new name."),
    target: str = typer.Argument(..., metavar="COLLECTION", help="The collection it reaches."),
    reason: str = typer.Option(
        "made by hand", "--reason", metavar="TEXT", help="Why, for `list-aliases`."
    ),
    as_json: bool = JSON,
) -> None:
    """Make NAME another name for COLLECTION."""
    alias = renaming.create_alias(project_paths(), name, target, reason=reason)
    render_project.render_alias(alias, "Created", as_json)


@alias_app.command("delete")
def delete(
    name: str = typer.Argument(..., metavar="NAME", help="The alias to delete."),
    as_json: bool = JSON,
) -> None:
    """Delete the alias NAME (its collection stays)."""
    render_project.render_alias(renaming.remove_alias(project_paths(), name), "Deleted", as_json)
