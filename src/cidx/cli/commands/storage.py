"""`cidx storage migrate --to MODE`: move the index to another store without downtime.

The project's collection migrates to a new collection in the other store
(a collection migration, `cidx.dualwrite`); `cidx collections migration
status|cutover|rollback|cleanup` then act on it as on any migration.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cidx.cli.params import (
    JSON,
    NO_WAIT,
    QDRANT_CA_FILE,
    QDRANT_SHARED_COLLECTION,
    QDRANT_URL,
    WAIT_TIMEOUT,
)

storage_app = typer.Typer(
    help="Move the project's index to another store (local, global, a Qdrant server) "
    "without downtime.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    app.add_typer(storage_app, name="storage")


@storage_app.command("migrate")
def migrate(
    to: str = typer.Option(
        ...,
        "--to",
        metavar="MODE",
        help="Where the index moves: local (.code-indexer/), global (the user's shared "
        "store) or server (with --qdrant-url).",
    ),
    qdrant_url: str = QDRANT_URL,
    qdrant_ca_file: str = QDRANT_CA_FILE,
    qdrant_shared_collection: str = QDRANT_SHARED_COLLECTION,
    batch: int = typer.Option(
        None, "--batch", metavar="N", help="Points per backfill batch (default 2048)."
    ),
    retain: str = typer.Option(
        "30d",
        "--retain",
        metavar="PERIOD",
        help="How long the old store's copy is kept (and written) after cutover, for "
        "rollback: 30d, 12h, 0.",
    ),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Start moving the index to another store: every write goes to both from now
    on, the points are copied and validated; `cidx collections migration
    cutover` then switches reads (and the config) to the new store."""
    from cidx.cli.migration_render import call_migrating
    from cidx.cli.params import parse_period
    from cidx.dualwrite import storage_move_request
    from cidx.owner.protocol import MIGRATE

    request = storage_move_request(
        to,
        qdrant_url,
        ca_file=qdrant_ca_file,
        shared_collection=qdrant_shared_collection,
        base=Path.cwd(),
        batch=batch,
        retain_seconds=parse_period(retain, "--retain"),
    )
    call_migrating(MIGRATE, request, no_wait=no_wait, wait_timeout=wait_timeout, as_json=as_json)
