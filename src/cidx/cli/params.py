"""Options shared by several commands, and parsers for their values."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import typer

from cidx.errors import UsageError

if TYPE_CHECKING:
    from cidx.logs import LogFormat

JSON = typer.Option(False, "--json", help="Print the result as JSON.")
NO_WAIT = typer.Option(
    False,
    "--no-wait",
    help="Fail at once if another process is using the index, instead of waiting.",
)

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


LOG_FORMAT = typer.Option("human", "--log-format", help="Log lines as human text or JSON (json).")


def log_format_value(value: str) -> LogFormat:
    if value == "human":
        return "human"
    if value == "json":
        return "json"
    raise UsageError(f"Unknown --log-format {value!r}. Use human or json.")
