"""The daemon's user-wide settings: `<user config folder>/daemon.json`.

    {"version": 1, "cpu_cap_percent": 50}

`cpu_cap_percent` caps the CPU the daemon's background indexing takes, on
average, as a share of the whole machine (1-100; 100: no cap). A value
given to `cidx start --cpu-cap` wins over the file; without either, the
default is `cidx.cpucap.DEFAULT_PERCENT`. The file is read by `cidx start`
when it launches the daemon; a bad one is refused with its name and what
to fix, never guessed at. Later versions change the file only through a
numbered step here, as every on-disk format of cidx does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cidx import userdirs
from cidx.cpucap import DEFAULT_PERCENT
from cidx.errors import ConfigError, UsageError

VERSION = 1
FILE_NAME = "daemon.json"


@dataclass(frozen=True)
class DaemonSettings:
    cpu_cap_percent: float = DEFAULT_PERCENT


def settings_file() -> Path:
    return userdirs.config_dir() / FILE_NAME


def check_cpu_cap(value: float, where: str) -> float:
    """`value` as a CPU cap, or a UsageError naming `where` it came from."""
    if not 1 <= value <= 100:
        raise UsageError(
            f"{where} must be a share of the machine's CPU between 1 and 100 (percent), "
            f"not {value:g}. 100 turns the cap off."
        )
    return value


def load_settings(path: Path | None = None) -> DaemonSettings:
    """The settings in `path` (the user's `daemon.json`); defaults when it does not exist."""
    path = path or settings_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DaemonSettings()
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"Cannot read the cidx daemon settings {path}: {exc}. Fix the file (JSON like "
            f'{{"version": {VERSION}, "cpu_cap_percent": 50}}) or remove it.'
        ) from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ConfigError(
            f"The cidx daemon settings {path} are not version {VERSION} settings (a newer "
            f'cidx wrote them?). Set "version": {VERSION}, or remove the file.'
        )
    unknown = sorted(set(data) - {"version", "cpu_cap_percent"})
    if unknown:
        raise ConfigError(
            f"The cidx daemon settings {path} have unknown keys: {', '.join(unknown)}. "
            "The only setting is cpu_cap_percent."
        )
    cap = data.get("cpu_cap_percent", DEFAULT_PERCENT)
    if isinstance(cap, bool) or not isinstance(cap, int | float):
        raise ConfigError(f"cpu_cap_percent in {path} must be a number, not {cap!r}.")
    try:
        return DaemonSettings(
            cpu_cap_percent=check_cpu_cap(float(cap), f"cpu_cap_percent in {path}")
        )
    except UsageError as exc:
        raise ConfigError(exc.message) from None


def cpu_cap(option: float | None) -> float:
    """The cap the daemon runs with: `--cpu-cap` if given, else the settings file's."""
    if option is not None:
        return check_cpu_cap(option, "--cpu-cap")
    return load_settings().cpu_cap_percent
