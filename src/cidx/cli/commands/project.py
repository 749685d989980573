"""`cidx project`: the project's identity, moving its data when it changes, its aliases."""

from __future__ import annotations

import typer

from cidx import renaming, service
from cidx.cli import render_project
from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, confirm, flag, wait_policy
from cidx.errors import UsageError
from cidx.project import project_paths

project_app = typer.Typer(
    rich_markup_mode=None,
    help="The project's identity, and the aliases that keep old collection names working.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")


@project_app.command("info")
def info(as_json: bool = JSON) -> None:
    """Show the project's id, how it was derived, its collections and aliases."""
    render_project.render_info(service.project_info(), as_json)


@project_app.command("update-remote")
def update_remote(
    dry_run: bool = flag("--dry-run", help="Say what would move, and change nothing."),
    yes: bool = flag("--yes", "-y", help="Do not ask for confirmation."),
    force: bool = flag("--force", help="Replace a collection that already has the new name."),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Move the index to the names the project's id gives now (e.g. after adding a
    git remote); the old names keep working through aliases."""
    plan = service.update_remote(dry_run=True)
    if dry_run or plan.status == "unchanged":
        render_project.render_update(plan, as_json, dry_run=True)
        return
    if not as_json:
        render_project.render_update(plan, False, dry_run=True)
    confirm("Move the index to the new names?", yes=yes or force)
    done = service.update_remote(force=force, wait=wait_policy(no_wait, wait_timeout))
    render_project.render_update(done, as_json, dry_run=False)


@project_app.command("list-aliases")
def list_aliases(
    fmt: str = typer.Option(
        "table", "--format", metavar="table|json|simple", help="How to print the aliases."
    ),
) -> None:
    """List the aliases: each one's target, who made it and why, when, and last use."""
    if fmt not in ("table", "json", "simple"):
        raise UsageError(f"Unknown --format {fmt!r}. Use table, json or simple.")
    render_project.render_aliases(renaming.list_aliases(project_paths()), fmt)


@project_app.command("remove-alias")
def remove_alias(
    name: str = typer.Argument(..., metavar="NAME", help="The alias to remove."),
    force: bool = flag("--force", help="Do not ask for confirmation."),
    as_json: bool = JSON,
) -> None:
    """Remove an alias (its collection stays); the old name then stops working."""
    paths = project_paths()
    alias = renaming.find_alias(paths, name)
    if alias is not None and not as_json:
        render_project.render_aliases([alias], "table")
    if alias is not None:
        confirm(f"Remove the alias {name}?", yes=force, flag="--force")
    render_project.render_alias(renaming.remove_alias(paths, name), "Removed", as_json)
