"""Options shared by several commands, and parsers for their values.

Every option names its value the way help should show it (`--path GLOB`,
`--interval SECONDS`); flags show no value at all.
"""

from __future__ import annotations

import math
import re
import sys
from typing import TYPE_CHECKING, Any

import typer

from cidx.errors import UsageError
from cidx.service import WaitPolicy

if TYPE_CHECKING:
    from cidx.logs import LogFormat
    from cidx.manage import ConfirmFn, RemovalPlan
    from cidx.storage import StorageMode

# How long a command that is not run from a terminal (a script, CI, an
# agent) waits for another process that owns the index, unless told. At a
# terminal it waits as long as it takes: the person sees why, and Ctrl-C.
NON_INTERACTIVE_WAIT_SECONDS = 600.0


def flag(*decls: str, help: str) -> Any:
    """A boolean flag, off unless given."""
    return typer.Option(False, *decls, help=help, metavar="")


JSON = flag("--json", help="Print the result as JSON.")
NO_WAIT = flag(
    "--no-wait",
    help="Fail at once if another process is using the index, instead of waiting "
    "(the same as --wait-timeout 0).",
)
WAIT_TIMEOUT = typer.Option(
    None,
    "--wait-timeout",
    metavar="SECONDS",
    help="Wait at most this long for another process using the index. Default: as long "
    f"as it takes at a terminal, {NON_INTERACTIVE_WAIT_SECONDS:g} s otherwise.",
)


def wait_policy(no_wait: bool, wait_timeout: float | None) -> WaitPolicy:
    """The waiting a command does, from --no-wait and --wait-timeout."""
    from cidx.cli.render import note, waiting
    from cidx.cli.storage_render import migrating

    if no_wait:
        return WaitPolicy(timeout=0, on_wait=waiting, on_notice=note, on_migration=migrating)
    if wait_timeout is None:
        interactive = sys.stderr.isatty() and sys.stdin.isatty()
        timeout = None if interactive else NON_INTERACTIVE_WAIT_SECONDS
        return WaitPolicy(timeout, waiting, note, migrating)
    return WaitPolicy(
        seconds(wait_timeout, "--wait-timeout", allow_zero=True), waiting, note, migrating
    )


def seconds(value: float, option: str, *, allow_zero: bool = False, least: float = 0.0) -> float:
    """`value` checked as a number of seconds for `option`."""
    low = max(least, 0.0)
    if not math.isfinite(value) or value < low or (value == 0 and not allow_zero):
        bound = f"at least {low:g}" if low else ("0 or more" if allow_zero else "above 0")
        raise UsageError(f"{option} must be a number of seconds, {bound}, not {value:g}.")
    return value


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}


def parse_size(value: str) -> int:
    """`"1M"`, `"512k"`, `"2.5MB"` or `"1048576"` → bytes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(
            f"Cannot read the size {value!r}. Use bytes or a unit, e.g. 1048576, 512K, 2M."
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise UsageError(f"The size must be above zero, not {value!r}.")
    return size


_PERIODS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_period(value: str, option: str) -> float:
    """`"30d"`, `"12h"`, `"90m"`, `"0"` or `"3600"` (seconds) → seconds."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*", value.lower())
    if match is None:
        raise UsageError(
            f"Cannot read {option} {value!r}. Give a number and a unit, e.g. 30d, 12h, 90m."
        )
    return float(match.group(1)) * _PERIODS[match.group(2)]


LOG_FORMAT = typer.Option(
    "human", "--log-format", metavar="human|json", help="Log lines as human text or JSON."
)


def log_format_value(value: str) -> LogFormat:
    if value == "human":
        return "human"
    if value == "json":
        return "json"
    raise UsageError(f"Unknown --log-format {value!r}. Use human or json.")


def confirm(question: str, *, yes: bool, flag: str = "--yes") -> None:
    """Ask `question` at a terminal unless `yes`; elsewhere `flag` is needed.

    A "no" ends the command with exit code 1 and nothing changed.
    """
    if yes:
        return
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError(
            f"{question} Nothing was changed: pass {flag} to confirm when not at a terminal."
        )
    if not typer.confirm(question, default=False, err=True):
        from cidx.cli.render import note

        note("Nothing was changed.")
        raise typer.Exit(1)


def storage_mode(value: str | None, local_storage: bool) -> StorageMode | None:
    """The storage mode from --storage and its short form --local-storage."""
    if local_storage:
        if value not in (None, "local"):
            raise UsageError(f"--local-storage and --storage {value} contradict each other.")
        return "local"
    if value is None:
        return None
    if value == "local":
        return "local"
    if value == "global":
        return "global"
    if value == "server":
        return "server"
    raise UsageError(f"Unknown --storage {value!r}. Use local, global or server.")


YES = flag("--yes", "-y", help="Do not ask for confirmation (for scripts).")

# A Qdrant server, where a command takes one (`init`, `storage migrate`, `restore`).
QDRANT_URL = typer.Option(
    None,
    "--qdrant-url",
    metavar="URL",
    help="The Qdrant server (https://HOST:6333). The API key comes from "
    "$CIDX_QDRANT_API_KEY or ~/.config/cidx/qdrant-api-key, never from the command line. "
    "local:FOLDER is qdrant-client's in-process local mode, for tests.",
)
QDRANT_CA_FILE = typer.Option(
    None,
    "--qdrant-ca-file",
    metavar="FILE",
    help="PEM file of the certificate authorities to trust for --qdrant-url (a private CA).",
)
QDRANT_SHARED_COLLECTION = typer.Option(
    None,
    "--qdrant-shared-collection",
    metavar="NAME",
    help="Keep this project in the server collection NAME, shared with other projects "
    "(each one a tenant of it), instead of in a collection of its own.",
)


def confirmer(yes: bool) -> ConfirmFn | None:
    """How a removal is confirmed: not at all with --yes; else by showing what
    goes and asking (`confirm`: without a terminal, the command refuses and
    names --yes)."""
    if yes:
        return None

    def ask(plan: RemovalPlan) -> bool:
        from cidx.cli.storage_render import render_plan

        render_plan(plan)
        confirm("Remove it?", yes=False)
        return True

    return ask
