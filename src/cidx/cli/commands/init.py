"""`cidx init`: create the project's index folder and config."""

from __future__ import annotations

import typer

from cidx import service
from cidx.cli import render
from cidx.cli.params import (
    JSON,
    NO_WAIT,
    QDRANT_CA_FILE,
    QDRANT_SHARED_COLLECTION,
    QDRANT_URL,
    WAIT_TIMEOUT,
    flag,
    parse_size,
    storage_mode,
    wait_policy,
)


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    max_file_size: str = typer.Option(
        None,
        "--max-file-size",
        metavar="SIZE",
        help="Skip files larger than this (e.g. 512K, 2M). Default 1M.",
    ),
    force: bool = flag(
        "--force",
        help="Replace an existing index with a new, empty one (also when its config cannot "
        "be read); cached embeddings are kept.",
    ),
    storage: str = typer.Option(
        None,
        "--storage",
        metavar="local|global|server",
        help="Where the index's data lives: in the project (local, the default), in one "
        "store in your data folder shared by every project in global mode (an existing "
        "index moves between these two), or on a Qdrant server (server, with --qdrant-url).",
    ),
    local_storage: bool = flag("--local-storage", help="The same as --storage local."),
    qdrant_url: str = QDRANT_URL,
    qdrant_ca_file: str = QDRANT_CA_FILE,
    qdrant_shared_collection: str = QDRANT_SHARED_COLLECTION,
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Create `.code-indexer/` in the project root (found from the working directory)."""
    size = parse_size(max_file_size) if max_file_size is not None else None
    result = service.init_project(
        max_file_size=size,
        force=force,
        storage=storage_mode(storage, local_storage),
        wait=wait_policy(no_wait, wait_timeout),
        qdrant_url=qdrant_url,
        qdrant_ca_file=qdrant_ca_file,
        qdrant_shared_collection=qdrant_shared_collection,
    )
    render.render_init(result, as_json)
