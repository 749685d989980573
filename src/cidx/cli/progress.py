"""The progress bar shown on stderr while a sync runs."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.progress import (
    BarColumn,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as Bar,
)
from rich.text import Text

from cidx.cli.render import error_console
from cidx.messages import Progress


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
def progress_bar(enabled: bool = True) -> Iterator[Callable[[Progress], None]]:
    """A callback drawing sync progress; a no-op when stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _p: None
        return
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
            if p.phase != "index" or p.files_total == 0:
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
