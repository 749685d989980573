"""The `cidx` command: one typer app, one module per command under `commands/`.

This is the only place errors become stderr text and an exit code, all in
one style (`error: <what went wrong, where, and what to do>`): a
`CidxError` with its own exit code, a usage error from argument parsing
with exit code 2, Ctrl-C with 130. Anything else is a bug: its traceback is
written to the project's log (or the user's, when there is no project
index to write to), and the message says where.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import typer

from cidx import __version__
from cidx.cli.commands import (
    backup,
    clear_data,
    clone,
    collections,
    config,
    doctor,
    fix_config,
    force_flush,
    index,
    init,
    mcp,
    migrations,
    pause,
    project,
    query,
    restore,
    serve,
    start,
    status,
    stop,
    storage,
    sync,
    uninstall,
    watch,
)
from cidx.errors import CidxError, ExitCode

app = typer.Typer(
    name="cidx",
    help="Semantic code search that lives inside your project.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help, as git and pip print it: option, value name, description.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cidx {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        metavar="",
        help="Print the version and exit.",
    ),
) -> None:
    """Semantic code search that lives inside your project."""


for module in (
    init,
    index,
    query,
    status,
    doctor,
    watch,
    sync,
    serve,
    start,
    stop,
    mcp,
    project,
    collections,
    config,
    clear_data,
    uninstall,
    migrations,
    force_flush,
    pause,
    clone,
    fix_config,
    backup,
    restore,
    storage,
):
    module.register(app)


INTERRUPTED_NOTE = (
    "Interrupted. The index is consistent: what was indexed is kept, and `cidx index` "
    "finishes the job."
)


def main() -> None:
    sys.exit(run(sys.argv[1:]))


def run(argv: list[str]) -> int:
    """Run one command line; its exit code."""
    from cidx.cli import render

    # Everything cidx writes (the index, logs, sockets) is for this user only:
    # the index holds the text of the user's source.
    os.umask(0o077)
    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        _open_project_log()
        result = app(args=argv, prog_name="cidx", standalone_mode=False)
    except CidxError as exc:
        _log_error(exc)
        render.error(exc.message)
        return int(exc.exit_code)
    except (Interrupted, KeyboardInterrupt):
        render.note(INTERRUPTED_NOTE)
        return int(ExitCode.INTERRUPTED)
    except typer.Abort:
        render.note("Aborted.")
        return int(ExitCode.INTERRUPTED)
    except typer.TyperException as exc:  # bad arguments, from the parser
        render.error(_usage_message(exc))
        return int(exc.exit_code)
    except Exception as exc:
        if _no_space(exc):
            # A write path that does not check for a full disk itself still
            # ends in the same message as those that do.
            full = _disk_full(exc)
            render.error(full.message)
            return int(full.exit_code)
        where = _log_crash(exc)
        render.error(
            f"cidx failed unexpectedly ({type(exc).__name__}: {exc}). This is a bug; "
            f"the details are in {where}."
            if where is not None
            else f"cidx failed unexpectedly ({type(exc).__name__}: {exc}). This is a bug."
        )
        if where is None:
            import traceback

            traceback.print_exc()
        return int(ExitCode.ERROR)
    finally:
        signal.signal(signal.SIGINT, previous)
    return result if isinstance(result, int) else 0


class Interrupted(BaseException):
    """Ctrl-C. Not a KeyboardInterrupt: the argument parser would turn that
    into a bare exit code before this module could say what it means."""


def _interrupt(_signum: int, _frame: object) -> None:
    raise Interrupted


def _open_project_log() -> None:
    """Log to the project's log file from the start, when it has an index: an
    owner answering other processes logs what fails while serving them."""
    from cidx.logs import project_log

    project_log()


def _usage_message(exc: typer.TyperException) -> str:
    message = exc.format_message().rstrip(".")
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", "cidx") if ctx is not None else "cidx"
    return f"{message}. Run `{command} --help` for usage."


def _log_error(exc: CidxError) -> None:
    """Keep an expected error in the project's log too: a script's stderr may be lost."""
    from cidx.logs import project_log

    log = project_log()
    if log is not None:
        log.warning("cidx %s: %s", " ".join(sys.argv[1:2]), exc.message)


def _log_crash(exc: BaseException) -> str | None:
    """Write the traceback of an unexpected failure to a log; where it went."""
    from cidx.logs import crash_log

    return crash_log(exc, " ".join(sys.argv[1:]))


def _no_space(exc: BaseException) -> bool:
    from cidx.fsutil import is_no_space

    return is_no_space(exc)


def _disk_full(exc: BaseException) -> CidxError:
    from cidx.fsutil import disk_full

    name = getattr(exc, "filename", None)
    return disk_full(Path(name).parent if isinstance(name, str) else Path.cwd())
