"""`cidx fix-config`: make a moved or copied project's config match where it is."""

from __future__ import annotations

import typer

from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, flag, wait_policy
from cidx.cli.render_copy import render_fix
from cidx.errors import ExitCode
from cidx.relocate import fix_config as fix


def register(app: typer.Typer) -> None:
    app.command("fix-config")(fix_config)


def fix_config(
    dry_run: bool = flag("--dry-run", help="Say what would change, and change nothing."),
    force: bool = flag(
        "--force",
        help="Make this project independent (the identity derived at its place, and "
        "collection names of its own) even when nothing says it is a copy: its original "
        "moved, or is on another machine.",
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Detect a project that was moved or copied, and rewrite its config: the
    root, and for a copy the identity derived at its place (new unless it comes
    from a git remote or the config) and collection names of its own.

    The old config is backed up beside it; the index is checked afterwards
    (counts and a sample query; exit 12 when the check finds a problem, each
    naming its repair). Running it again changes nothing.
    """
    report = fix(dry_run=dry_run, force=force, wait=wait_policy(no_wait, wait_timeout))
    render_fix(report, as_json)
    if report.verification is not None and report.verification.problems:
        # The config is fixed, the index is not yet right: scripts must see it.
        raise typer.Exit(int(ExitCode.UNHEALTHY))
