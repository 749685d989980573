"""`cidx migrations [status|history|reset]`: inspect and recover the index's migrations."""

from __future__ import annotations

import typer

from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, wait_policy
from cidx.cli.storage_render import render_history, render_migration_status, render_reset

migrations_app = typer.Typer(
    name="migrations",
    help="Show what is pending or unfinished (status, the default), what ran (history), or "
    "roll back an unfinished migration (reset).",
    invoke_without_command=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    app.add_typer(migrations_app)


@migrations_app.callback()
def _default(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Show or recover the migrations of the project's index (default: status)."""
    if ctx.invoked_subcommand is None:
        status(as_json)


@migrations_app.command("status")
def status(as_json: bool = JSON) -> None:
    """What the next command will migrate, and any migration stopped part-way."""
    from cidx.migration import migration_status

    render_migration_status(migration_status(), as_json)


@migrations_app.command("history")
def history(as_json: bool = JSON) -> None:
    """Every migration recorded for the index: id, start, end, status, backup."""
    from cidx.migration import migration_history

    render_history(migration_history(), as_json)


@migrations_app.command("reset")
def reset(
    no_wait: bool = NO_WAIT, wait_timeout: float = WAIT_TIMEOUT, as_json: bool = JSON
) -> None:
    """Roll back an unfinished migration, and keep the index where its data is."""
    from cidx.migration import reset_migrations

    render_reset(reset_migrations(wait=wait_policy(no_wait, wait_timeout)), as_json)
