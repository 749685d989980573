"""The `cidx` entry point, and the short way through it for `cidx query`.

When a process already owns the project's index (a `cidx watch`, `cidx
serve`, the daemon), or the daemon takes it on being asked, a query is one
round trip on a socket; importing the full command line (typer, pydantic,
every command) would cost several times that. So `main` first tries
`query` here, with the plain options a person or an agent types, and hands
everything else — other commands, other options, no owner, a busy or paused
owner, any error — to the full command line (`cidx.cli.app`), which then
does the whole job itself (a search is idempotent). The output is the same
renderer's either way; only the parsing of these few options lives here,
and what makes a query valid stays in `cidx.query`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cidx.answers import Progress
from cidx.errors import CidxError


def main() -> None:
    code = run(sys.argv[1:])
    if code is None:
        from cidx.cli.app import main as full

        full()
        return
    sys.exit(code)


@dataclass
class _Query:
    text: str | None = None
    limit: int | None = None
    mode: str = "hybrid"
    paths: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    min_score: float | None = None
    sync: bool = True
    as_json: bool = False


_FLAGS = {"--json": ("as_json", True), "--no-sync": ("sync", False)}
_VALUES = {
    "-n": "limit",
    "--limit": "limit",
    "--mode": "mode",
    "--path": "paths",
    "--lang": "languages",
    "--min-score": "min_score",
}


def _parse(argv: list[str]) -> _Query | None:
    """The query `argv` asks for, or None when the full command line should parse it."""
    if not argv or argv[0] != "query":
        return None
    query = _Query()
    args = iter(argv[1:])
    try:
        for arg in args:
            name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
            if name in _FLAGS and not eq:
                setattr(query, *_FLAGS[name])
            elif name in _VALUES:
                value = inline if eq else next(args)
                field_name = _VALUES[name]
                if field_name == "limit":
                    query.limit = int(value)
                elif field_name == "min_score":
                    query.min_score = float(value)
                elif field_name in ("paths", "languages"):
                    getattr(query, field_name).append(value)
                else:
                    query.mode = value
            elif arg.startswith("-") or query.text is not None:
                return None  # --help, --batch, a second text...: the full parser
            else:
                query.text = arg
    except (StopIteration, ValueError):
        return None
    if query.text is None or not query.text.strip():
        return None
    return query


def run(argv: list[str]) -> int | None:
    """Answer `argv` through the index's owner; None to leave it to the full CLI."""
    query = _parse(argv)
    if query is None:
        return None
    os.umask(0o077)
    try:
        return _ask(query)
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and nowhere to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        from cidx.cli.app import INTERRUPTED_NOTE
        from cidx.cli.render import note

        note(INTERRUPTED_NOTE)
        return 130


def _ask(query: _Query) -> int | None:
    from cidx.answers import SearchRequest
    from cidx.owner import wire
    from cidx.owner.client import OwnerClient, OwnerUnavailable
    from cidx.project import project_paths
    from cidx.query import DEFAULT_LIMIT, query_request, rebase_globs

    try:
        paths = project_paths()
        if not paths.exists():
            return None  # a first index: the full command checks the tree first
        client = OwnerClient(paths.socket_path)
        try:
            state = client.ping()
        except OwnerUnavailable:
            from cidx.daemon import adopt

            if not paths.writable() or not adopt(paths.root):
                return None
            state = client.ping()
        if (state.busy and not state.live) or state.paused_for is not None:
            # The full command says what it waits for. A live owner answers a
            # query between the batches of its sync, so nobody waits there.
            return None
        request = query_request(
            query.text or "",
            limit=DEFAULT_LIMIT if query.limit is None else query.limit,
            mode=query.mode,
            paths=rebase_globs(query.paths, paths.folder_of(Path.cwd())),
            languages=query.languages,
            min_score=query.min_score,
        )
        with _LazyProgress() as progress:
            outcome = client.call(
                wire.SEARCH, SearchRequest([request], sync=query.sync), on_progress=progress
            )
    except (CidxError, OwnerUnavailable, OSError):
        return None
    from cidx.cli.render_answers import notes_needed, write_json

    if not notes_needed(outcome):
        # Nothing for stderr: the answer alone, without loading rich.
        if query.as_json:
            write_json(outcome, str(paths.root), batch=False)
        else:
            from cidx.cli.render_hits import path_view, write_results

            write_results(outcome.answers[0], path_view(paths.root))
        return 0
    from cidx.cli import render

    render.render_outcome(outcome, str(paths.root), as_json=query.as_json, batch=False)
    return 0


class _LazyProgress:
    """The sync progress display, loaded only once the owner reports work to
    show (a sync that finds nothing changed reports none)."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._show: Callable[[Progress], None] | None = None

    def __call__(self, p: Progress) -> None:
        if self._show is None:
            if not p.shows_work:
                return
            from cidx.cli.progress import progress_bar

            self._show = self._stack.enter_context(progress_bar())
        self._show(p)

    def __enter__(self) -> _LazyProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.__exit__(kind, exc, tb)
