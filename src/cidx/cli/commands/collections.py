"""`cidx collections`: the project's collections, and aliases made by hand."""

from __future__ import annotations

import typer

from cidx import renaming
from cidx.cli import render_project
from cidx.cli.params import JSON
from cidx.project import project_paths

collections_app = typer.Typer(
    help="The project's collections and their aliases.", no_args_is_help=True
)
alias_app = typer.Typer(
    rich_markup_mode=None, help="Aliases: another name for a collection.", no_args_is_help=True
)
collections_app.add_typer(alias_app, name="alias")


def register(app: typer.Typer) -> None:
    app.add_typer(collections_app, name="collections")


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
