"""Sync progress on stderr: a bar at a terminal, a line every few seconds elsewhere.

Piped or logged output (CI, an agent running the command) gets one plain
line every 10 seconds ($CIDX_PROGRESS_SECONDS changes it) — files, chunks,
rate and time left — so a long first index shows life without drawing a bar
into a log file.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator

from rich.progress import (
    BarColumn,
    Progress as Bar,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cidx.cli.render import error_console
from cidx.formatting import duration
from cidx.messages import Progress

LINE_INTERVAL = 10.0
INTERVAL_ENV = "CIDX_PROGRESS_SECONDS"


class _Counts(ProgressColumn):
    def render(self, task: Task) -> Text:
        f = task.fields
        elapsed = max(task.elapsed or 0.0, 1e-6)
        chunks = f.get("embedded", 0) + f.get("reused", 0)
        rate = f.get("embedded", 0) / elapsed
        return Text(
            f"{f.get('files', 0):,}/{f.get('files_total', 0):,} files · {chunks:,} chunks "
            f"({f.get('reused', 0):,} cached) · {rate:,.0f} chunks/s",
            style="dim",
        )


@contextlib.contextmanager
def progress_bar(bar: bool = True) -> Iterator[Callable[[Progress], None]]:
    """A callback showing sync progress: a bar at a terminal (unless `bar` is
    False), plain lines when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield _lines()
        return
    if not bar:
        yield lambda _p: None
        return
    with _bar() as update:
        yield update


def progress_line(p: Progress, elapsed: float) -> str:
    """One line of progress for a log: files, chunks, rate and time left."""
    share = p.bytes_done / p.bytes_total if p.bytes_total else 0.0
    rate = p.chunks_embedded / elapsed if elapsed > 0 else 0.0
    left = ""
    if 0 < share < 1:
        left = f", about {duration(elapsed * (1 - share) / share)} left"
    return (
        f"Indexing: {p.files_done:,}/{p.files_total:,} files ({share:.0%}), "
        f"{p.chunks_embedded + p.chunks_reused:,} chunks ({p.chunks_reused:,} cached), "
        f"{rate:,.0f} chunks/s{left}"
    )


def _lines() -> Callable[[Progress], None]:
    try:
        every = float(os.environ.get(INTERVAL_ENV) or LINE_INTERVAL)
    except ValueError:
        every = LINE_INTERVAL
    started = time.monotonic()
    last = started

    def update(p: Progress) -> None:
        nonlocal last
        now = time.monotonic()
        if not p.shows_work or now - last < every:
            return
        last = now
        sys.stderr.write(progress_line(p, now - started) + "\n")
        sys.stderr.flush()

    return update


@contextlib.contextmanager
def _bar() -> Iterator[Callable[[Progress], None]]:
    bar = Bar(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        _Counts(),
        TimeRemainingColumn(),
        console=error_console(),
        transient=True,
    )
    task = None

    def update(p: Progress) -> None:
        nonlocal task
        if task is None:
            if not p.shows_work:
                return
            bar.start()
            task = bar.add_task("Indexing", total=max(p.bytes_total, 1))
        bar.update(
            task,
            completed=p.bytes_done,
            files=p.files_done,
            files_total=p.files_total,
            embedded=p.chunks_embedded,
            reused=p.chunks_reused,
        )

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()
