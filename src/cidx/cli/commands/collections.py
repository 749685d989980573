"""`cidx collections list|info|migrate`, `alias create|delete` and `migration ...`.

The collections of the project's store (or the global store) and whose they
are; aliases made by hand.
"""

from __future__ import annotations

from typing import Literal

import typer

from cidx import renaming
from cidx.cli import render_project
from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, flag, wait_policy
from cidx.cli.storage_render import render_collection, render_collections
from cidx.project import project_paths

collections_app = typer.Typer(
    help="List and inspect index collections, in the project's store or the global store; "
    "aliases; migrate a collection to a new one without downtime.",
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


migration_app = typer.Typer(
    rich_markup_mode=None,
    help="The collection migration under way: status, cutover, rollback, cleanup.",
    no_args_is_help=True,
)
collections_app.add_typer(migration_app, name="migration")


@collections_app.command("migrate")
def migrate(
    source: str = typer.Argument(..., metavar="SOURCE", help="The collection to migrate."),
    target: str = typer.Argument(..., metavar="TARGET", help="The new collection's name."),
    reembed: str = typer.Option(
        None,
        "--reembed",
        metavar="MODEL",
        help="Embed every point again with MODEL (a model id, e.g. "
        "cidx-code4-minilm-l6-int8@256) instead of copying its vectors.",
    ),
    batch: int = typer.Option(
        None,
        "--batch",
        metavar="N",
        help="Points per backfill batch (default 2048, or 512 when re-embedding).",
    ),
    retain: str = typer.Option(
        "30d",
        "--retain",
        metavar="PERIOD",
        help="How long SOURCE is kept (and written) after cutover, for rollback: 30d, 12h, 0.",
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Migrate SOURCE to a new collection TARGET without downtime: dual writes,
    backfill, validation. `cidx collections migration cutover` then switches reads."""
    from cidx.cli.migration_render import call_migrating
    from cidx.cli.params import parse_period
    from cidx.messages import MigrateRequest
    from cidx.owner.protocol import MIGRATE

    request = MigrateRequest(source, target, reembed, batch, parse_period(retain, "--retain"))
    call_migrating(MIGRATE, request, no_wait=no_wait, wait_timeout=wait_timeout, as_json=as_json)


Action = Literal["status", "cutover", "rollback", "cleanup"]


def _act(
    action: Action, force: bool, no_wait: bool, wait_timeout: float | None, as_json: bool
) -> None:
    from cidx.cli.migration_render import render_migration
    from cidx.messages import MigrationRequest
    from cidx.owner.protocol import MIGRATION
    from cidx.service import with_index

    request = MigrationRequest(action, force)
    report = with_index(
        lambda handle: handle.call(MIGRATION, request),
        kind="status" if action == "status" else "migrate",
        wait=wait_policy(no_wait, wait_timeout),
    )
    render_migration(report, as_json)


@migration_app.command("status")
def migration_status(
    no_wait: bool = NO_WAIT, wait_timeout: float = WAIT_TIMEOUT, as_json: bool = JSON
) -> None:
    """Show the collection migration under way (or the last one): phase and progress."""
    _act("status", False, no_wait, wait_timeout, as_json)


@migration_app.command("cutover")
def migration_cutover(
    no_wait: bool = NO_WAIT, wait_timeout: float = WAIT_TIMEOUT, as_json: bool = JSON
) -> None:
    """Switch reads to TARGET once validated (SOURCE keeps receiving writes)."""
    _act("cutover", False, no_wait, wait_timeout, as_json)


@migration_app.command("rollback")
def migration_rollback(
    no_wait: bool = NO_WAIT, wait_timeout: float = WAIT_TIMEOUT, as_json: bool = JSON
) -> None:
    """Return reads and writes to SOURCE alone and drop TARGET (before cleanup)."""
    _act("rollback", False, no_wait, wait_timeout, as_json)


@migration_app.command("cleanup")
def migration_cleanup(
    force: bool = flag("--force", help="Drop SOURCE before its retention window ends."),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Stop dual writes and drop SOURCE (after the retention window, or with --force)."""
    _act("cleanup", force, no_wait, wait_timeout, as_json)
