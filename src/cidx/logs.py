"""Logging: human or JSON lines, on stderr for live owners and always in a rotating file.

`cidx watch`, `sync` and `serve` log one line per batch or cycle to stderr.
Every command that owns an index also logs to `.code-indexer/logs/cidx.log`
(rotated at 5 MiB, three kept), so what a background owner did — and the
traceback of any unexpected failure — can be read after the fact. A failure
with no project index to write to goes to the user's log folder
(`cidx.userdirs.log_dir`, by default `~/.local/state/cidx/logs`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cidx.errors import CidxError
from cidx.project import ProjectPaths, find_root
from cidx.userdirs import log_dir

LogFormat = Literal["human", "json"]
LOG_FILE_NAME = "cidx.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        summary = getattr(record, "summary", None)
        if summary is not None:
            entry["summary"] = summary
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _human(threads: bool = False) -> logging.Formatter:
    where = "[%(threadName)s] " if threads else ""
    return logging.Formatter(
        f"%(asctime)s %(levelname)-7s {where}%(message)s", datefmt="%Y-%m-%d %H:%M:%S"
    )


def setup_logging(paths: ProjectPaths, *, fmt: LogFormat = "human") -> None:
    """Route the `cidx` loggers to stderr and the project's log file."""
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else _human()
    logger = logging.getLogger("cidx")
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(formatter)
    logger.addHandler(stream)
    try:
        logger.addHandler(_file_handler(paths.logs_dir, formatter))
    except OSError as exc:
        # The log file is a copy of stderr: without it the owner still runs.
        logger.warning("not logging to %s: %s", paths.logs_dir / LOG_FILE_NAME, exc.strerror)
    logger.propagate = False


class _FileHandler(logging.handlers.RotatingFileHandler):
    """The log file, which a full disk (or a vanished folder) must not turn
    into a traceback on stderr after every line: the line is on stderr anyway."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)


def _file_handler(
    folder: Path, formatter: logging.Formatter, name: str = LOG_FILE_NAME
) -> logging.Handler:
    folder.mkdir(parents=True, exist_ok=True)
    handler = _FileHandler(folder / name, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    handler.setFormatter(formatter)
    return handler


def log_to_file(folder: Path, name: str = LOG_FILE_NAME, *, threads: bool = False) -> Path | None:
    """Make sure the `cidx` loggers also write to `folder`/`name` (once per
    process); the file, or None when it cannot be written. With `threads`,
    each line names its thread (the daemon names them for their project)."""
    logger = logging.getLogger("cidx")
    target = folder / name
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == target:
            return target
    try:
        handler = _file_handler(folder, _human(threads), name)
    except OSError:
        return None
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    # Without a stream handler of its own, a one-shot command logs to the
    # file only: its output is what the renderer prints.
    logger.propagate = False
    return target


def project_log(start: Path | None = None) -> logging.Logger | None:
    """The `cidx` logger writing to the log of the project at `start` (the
    working directory by default), or None when it has no writable index."""
    try:
        paths = ProjectPaths(find_root(start))
    except CidxError:
        return None  # no working folder: the command says so itself
    if not paths.index_dir.is_dir() or not paths.writable():
        return None
    return logging.getLogger("cidx") if log_to_file(paths.logs_dir) is not None else None


def crash_log(exc: BaseException, command: str) -> str | None:
    """Write `exc`'s traceback to the project's log, else the user's; its path."""
    target: Path | None = None
    with contextlib.suppress(Exception):
        if project_log() is not None:
            target = ProjectPaths(find_root()).logs_dir / LOG_FILE_NAME
    if target is None:
        with contextlib.suppress(Exception):
            target = log_to_file(log_dir())
    if target is None:
        return None
    logging.getLogger("cidx").error(
        "cidx %s failed unexpectedly", command, exc_info=(type(exc), exc, exc.__traceback__)
    )
    return str(target)
