"""Moving an index to another store as a collection migration, and the config each phase implies.

`cidx storage migrate --to server|local|global` migrates the project's
collection to a new collection in the other store: the same phases as any
collection migration (dual writes from the start, backfill of vectors and
payloads, validation, cutover, a retention window, cleanup). Two things are
particular to it, and live here:

- the TARGET's name: the name the other mode gives the project's collection,
  unless the state DB already knows that name (the manifest and the aliases
  are keyed by name: after a move there and back, the first name is an
  alias) — then that name with the mode, and a number, appended;
- the project's config follows the reads: from the cutover it names TARGET,
  its store and its server; after a rollback, SOURCE's again. The phase in
  the state DB is the truth; the config is brought to it after each switch
  and whenever the index opens, so a crash between the two mends itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cidx.config import Config, StorageMode, collection_name_for
from cidx.messages import MigrateRequest
from cidx.state.moves import CollectionMigration
from cidx.storage import mode_named, probe_server, requested_server
from cidx.store.server_settings import ServerSettings

__all__ = ["config_for_reads", "storage_move_request", "target_name"]


def storage_move_request(
    to: str,
    url: str | None,
    *,
    ca_file: str | None,
    shared_collection: str | None,
    base: Path,
    batch: int | None,
    retain_seconds: float,
) -> MigrateRequest:
    """What `cidx storage migrate --to MODE [--qdrant-url URL ...]` asks the
    owner to do; UsageError for options that do not go together, the store's
    own error for a server that cannot be used (checked before anything starts)."""
    mode = mode_named(to, "--to")
    _mode, server = requested_server(
        mode, url, ca_file=ca_file, shared_collection=shared_collection, base=base, flag="--to"
    )
    if server is not None:
        probe_server(server)
    return MigrateRequest(
        source="",
        target="",
        batch=batch,
        retain_seconds=retain_seconds,
        to_storage=mode,
        server=server.model_dump_json() if server is not None else None,
    )


def target_name(config: Config, root: Path, mode: StorageMode, taken: Callable[[str], bool]) -> str:
    """The name of the project's collection in a store of `mode`: the one that
    mode gives it, or (`taken` says it is) the first free variant."""
    base = collection_name_for(
        mode, config.identity.id, config.embedding.model_id, root, config.naming_scheme
    )
    candidates = [base, f"{base}-{mode}", *(f"{base}-{mode}-{n}" for n in range(2, 1000))]
    for name in candidates:
        if not taken(name):
            return name
    raise RuntimeError(f"no free collection name for {base} in {mode} storage")


def config_for_reads(config: Config, move: CollectionMigration) -> Config | None:
    """The config that names the side reads go to in `move`'s phase, when it is
    not `config` (None: nothing to change, or `move` stays within one store)."""
    if not move.moves_store or not move.active:
        return None
    name, key = (
        (move.target, move.target_store) if move.cut_over else (move.source, move.source_store)
    )
    if key is None:
        return None
    doc = json.loads(key)
    mode: StorageMode = doc["mode"]
    server = ServerSettings.model_validate(doc["server"]) if mode == "server" else None
    wanted = config.model_copy(update={"storage_mode": mode, "server": server, "collection": name})
    return None if wanted == config else wanted
