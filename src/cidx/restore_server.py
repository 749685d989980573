"""Restoring a server-mode backup onto a Qdrant server, beside the collection it replaces.

A backup of a server-mode index holds its collections as points
(`cidx.pointsdump`). Restored into a project in local mode (or with
`--storage local`) they become an embedded index; restored into a project
on a server, or with `--storage server --qdrant-url URL`, they are
uploaded to the server instead — into new collections, never over one:
each collection gets its backed-up name, or when the server has that name
already (the index being replaced, usually), the first free `NAME-rN`.
The restore then checks them (point counts, sample queries) like any
restore; only after the project's index folder has been swapped in does
the collection the old config named go. A restore that fails before the
swap leaves the old index as it was and drops the new collections again;
one killed before the swap leaves the old index as it was too, and the new
collections on the server unused (the next restore picks other names).
"""

from __future__ import annotations

import contextlib
import logging

from cidx.archive import ArchiveManifest
from cidx.config import Config, load_config
from cidx.errors import CidxError, ConfigError, UsageError
from cidx.project import ProjectPaths
from cidx.storage import StorageLocation, open_store, storage_location
from cidx.store.server_settings import ServerSettings

__all__ = ["drop_new", "drop_replaced", "new_names", "server_target"]

log = logging.getLogger(__name__)


def server_target(
    paths: ProjectPaths,
    manifest: ArchiveManifest,
    storage: str | None,
    server: ServerSettings | None,
) -> ServerSettings | None:
    """The server a restore uploads to (None: the collections go into the
    embedded store): the one given, or that of the server-mode project the
    backup of a server-mode index is restored into."""
    if storage == "local":
        return None
    if server is not None:
        if manifest.storage_mode != "server":
            raise UsageError(
                f"The backup was made in {manifest.storage_mode} storage: its collections are "
                "shard files, which restore into the embedded store only. Restore it without "
                "--storage server, then move the index with `cidx storage migrate --to server "
                "--qdrant-url URL`."
            )
        return server
    own: ServerSettings | None = None
    if manifest.storage_mode == "server" and paths.config_file.exists():
        with contextlib.suppress(ConfigError):
            own = load_config(paths).server
    if own is None and storage == "server":
        raise UsageError(
            f"--storage server needs --qdrant-url URL: {paths.root} has no server-mode index "
            "whose server the backup could go to."
        )
    return own


def new_names(manifest: ArchiveManifest, location: StorageLocation) -> dict[str, str]:
    """Each backed-up collection's name on the server: its own, or the first
    free `NAME-rN` when the server has that one."""
    store = open_store(location)
    try:
        names: dict[str, str] = {}
        for collection in manifest.collections:
            base = collection.name
            candidates = [base, *(f"{base}-r{n}" for n in range(2, 10_000))]
            names[base] = next(c for c in candidates if not store.collection_exists(c))
        return names
    finally:
        store.close()


def drop_new(location: StorageLocation, names: dict[str, str]) -> None:
    """Remove the collections a failed restore uploaded (best effort: the
    failure that got here is the one to report)."""
    try:
        store = open_store(location)
    except CidxError as exc:
        log.warning("could not remove the restored collections: %s", exc.message)
        return
    try:
        for name in names.values():
            if store.collection_exists(name):
                store.drop_collection(name)
    except CidxError as exc:
        log.warning("could not remove the restored collections: %s", exc.message)
    finally:
        store.close()


def drop_replaced(paths: ProjectPaths, old: Config | None, names: dict[str, str]) -> None:
    """Once the restored index is in place: drop the server collection the
    replaced index's config named (unless the restore reused its name)."""
    if old is None or old.server is None or old.collection in names.values():
        return
    store = open_store(storage_location(paths, old))
    try:
        if store.collection_exists(old.collection):
            store.drop_collection(old.collection)
    finally:
        store.close()
