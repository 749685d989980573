"""Logging of long-running owners: human or JSON lines, on stderr and in a rotating file.

`cidx watch`, `sync` and `serve` log one line per batch or cycle. The same
lines go to `.code-indexer/logs/cidx.log` (rotated at 5 MiB, three kept), so
what a background owner did can be read after the fact.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from typing import Literal

from cidx.project import ProjectPaths

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


def _human() -> logging.Formatter:
    return logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")


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
    logger.propagate = False
    try:
        paths.logs_dir.mkdir(parents=True, exist_ok=True)
        file_handler = _FileHandler(
            paths.logs_dir / LOG_FILE_NAME,
            maxBytes=MAX_BYTES,
            backupCount=BACKUPS,
            encoding="utf-8",
        )
    except OSError as exc:
        # The log file is a copy of stderr: without it the owner still runs.
        logger.warning("not logging to %s: %s", paths.logs_dir / LOG_FILE_NAME, exc.strerror)
        return
    file_handler.setFormatter(formatter)
    logger.addHandler(file_handler)


class _FileHandler(logging.handlers.RotatingFileHandler):
    """The log file, which a full disk (or a vanished folder) must not turn
    into a traceback on stderr after every line: the line is on stderr anyway."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)
