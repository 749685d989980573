"""`cidx clear-data`: remove this project's index data (or every project's in the global store)."""

from __future__ import annotations

import typer

from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, YES, confirmer, flag, wait_policy
from cidx.cli.storage_render import render_clear


def register(app: typer.Typer) -> None:
    app.command("clear-data")(clear_data)


def clear_data(
    everything: bool = flag(
        "--all",
        help="Clear every project's collection in the global store (asks first).",
    ),
    yes: bool = YES,
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Remove the project's index data, wherever it is stored.

    The config and the embedding cache stay: the next `cidx index` rebuilds
    the index without embedding again what was embedded before.
    """
    from cidx.manage import clear_data as clear

    report = clear(
        everything=everything,
        confirm=confirmer(yes) if everything else None,
        wait=wait_policy(no_wait, wait_timeout),
    )
    render_clear(report, as_json)
