"""`cidx doctor`: check the project's index thoroughly, and repair it with --repair."""

from __future__ import annotations

import typer

from cidx.cli.doctor_render import render_doctor
from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT, flag, wait_policy
from cidx.cli.progress import progress_bar
from cidx.doctor import run_doctor
from cidx.errors import ExitCode


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    repair: bool = flag(
        "--repair",
        help="Fix what can be fixed: recreate a damaged config, rebuild a damaged state "
        "database or store (reusing cached embeddings), reconcile, clean up leftovers.",
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Check the index: config, state database, store, their agreement, leftovers,
    permissions and free space. Exits 12 when a problem remains.
    """
    wait = wait_policy(no_wait, wait_timeout)
    with progress_bar(not as_json) as progress:
        report = run_doctor(repair=repair, wait=wait, progress=progress)
    render_doctor(report, as_json)
    if not report.healthy:
        raise typer.Exit(int(ExitCode.UNHEALTHY))
