"""`cidx uninstall`: remove the project's index, in the project and in the global store."""

from __future__ import annotations

import typer

from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, YES, confirmer, wait_policy
from cidx.cli.storage_render import render_uninstall


def register(app: typer.Typer) -> None:
    app.command("uninstall")(uninstall)


def uninstall(
    yes: bool = YES,
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Remove this project's index after asking: `.code-indexer/` and, in global
    storage mode, its collections in the global store and their registry entries."""
    from cidx.manage import uninstall as remove

    report = remove(confirm=confirmer(yes), wait=wait_policy(no_wait, wait_timeout))
    render_uninstall(report, as_json)
