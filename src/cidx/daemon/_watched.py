"""The list of projects the daemon keeps live, kept across restarts.

A JSON file in the user state folder, `{"version": 1, "projects": [root, ...]}`,
replaced atomically on every change. A file from a newer cidx is left alone
(and not rewritten); an unreadable one counts as empty and is logged.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from cidx.fsutil import write_atomic

log = logging.getLogger(__name__)

VERSION = 1


def load(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("ignoring the watched-projects list %s: %s", path, exc)
        return []
    if not isinstance(data, dict) or data.get("version") != VERSION:
        log.warning("ignoring the watched-projects list %s: not version %d", path, VERSION)
        return []
    projects = data.get("projects")
    if not isinstance(projects, list):
        return []
    return [p for p in projects if isinstance(p, str)]


def save(path: Path, roots: list[str]) -> None:
    text = json.dumps({"version": VERSION, "projects": sorted(set(roots))}, indent=2)
    write_atomic(path, text + "\n", mode=0o600)
