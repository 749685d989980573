"""`cidx restore`: a backup back into a project, replacing its index only once verified."""

from __future__ import annotations

from pathlib import Path

import typer

from cidx.cli.params import (
    JSON,
    NO_WAIT,
    QDRANT_CA_FILE,
    QDRANT_URL,
    WAIT_TIMEOUT,
    flag,
    wait_policy,
)


def register(app: typer.Typer) -> None:
    app.command("restore")(restore)


def restore(
    archive: str = typer.Argument(..., metavar="ARCHIVE", help="The backup to restore."),
    into: Path | None = typer.Option(
        None,
        "--into",
        metavar="DIR",
        help="The project folder to restore into. Default: the current project.",
    ),
    force: bool = flag("--force", help="Replace the index (or global store) that is there."),
    global_store: bool = flag(
        "--global",
        help="The archive is a backup of the global store (`cidx backup --global`): restore "
        "it into your data folder (CIDX_DATA_DIR). Found from the archive when not given.",
    ),
    storage: str = typer.Option(
        None,
        "--storage",
        metavar="local|server",
        help="Where a backup of a server-mode index goes: server uploads it to a Qdrant "
        "server (--qdrant-url, or the server-mode project's own), local into "
        ".code-indexer/. Default: where the project restored into keeps its index.",
    ),
    qdrant_url: str = QDRANT_URL,
    qdrant_ca_file: str = QDRANT_CA_FILE,
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Restore an index from a backup: checked (checksums, format, model, counts, a
    sample query) before it replaces anything, then swapped in at once.
    """
    # Imported here, not at start-up (see `cidx.cli.commands.backup`).
    from cidx.cli.backup_render import render_restore
    from cidx.restore import restore_archive
    from cidx.storage import restore_storage

    mode, server = restore_storage(storage, qdrant_url, ca_file=qdrant_ca_file, base=Path.cwd())
    result = restore_archive(
        Path(archive),
        into=into,
        force=force,
        global_store=global_store,
        wait=wait_policy(no_wait, wait_timeout),
        storage=mode,
        server=server,
    )
    render_restore(result, as_json)
