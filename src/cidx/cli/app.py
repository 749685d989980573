"""The `cidx` command: one typer app, one module per command under `commands/`.

This is the only place a `CidxError` becomes stderr text and an exit code;
any other exception keeps its traceback, because it is a bug.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import typer

from cidx import __version__
from cidx.cli.commands import doctor, index, init, mcp, query, serve, status, sync, watch
from cidx.errors import CidxError, ExitCode

app = typer.Typer(
    name="cidx",
    help="Semantic code search that lives inside your project.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cidx {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Semantic code search that lives inside your project."""


for module in (init, index, query, status, doctor, watch, sync, serve, mcp):
    module.register(app)


def _fail(exc: CidxError) -> NoReturn:
    from cidx.cli.render import error_console

    error_console().print(f"[bold red]error:[/] {exc.message}", highlight=False)
    sys.exit(int(exc.exit_code))


def main() -> None:
    try:
        app()
    except CidxError as exc:
        _fail(exc)
    except OSError as exc:
        # A write path that does not check for a full disk itself still ends
        # in the same message (any other OSError is a bug: its traceback stays).
        from cidx.fsutil import disk_full, is_no_space

        if not is_no_space(exc):
            raise
        where = Path(exc.filename).parent if isinstance(exc.filename, str) else Path.cwd()
        _fail(disk_full(where))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
