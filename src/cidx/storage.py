"""Where a project's collections live, resolved from its config.

`storage_location` is the one place that turns a config into a place:

    local    the project's own `.code-indexer/qdrant-data/` (the default):
             the index travels with the project
    global   one embedded store shared by every project in this mode, in the
             user's data folder (`cidx.userdirs.data_dir()/qdrant-data`), one
             collection per project
    server   a Qdrant server (`config.server`), one collection per project
             (`cidx.store.server`); a `local:/folder` URL is qdrant-client's
             in-process local mode, a testing aid that stands in for a server

The store, `cidx status` and disk usage read the location; nothing else
derives a storage path from the project root. `place_key` writes a
location down (for a migration moving the index to another store, which
records where each side lives) and `place_location` reads it back.

A collection's name depends on the mode too (`cidx.config.collection_name_for`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cidx.config import StorageMode
from cidx.errors import UsageError
from cidx.fsutil import disk_usage
from cidx.store.server_settings import SHARED_COLLECTION_PATTERN, ServerSettings, local_path
from cidx.userdirs import data_dir

if TYPE_CHECKING:
    from cidx.config import Config
    from cidx.project import ProjectPaths
    from cidx.store import VectorStore

__all__ = [
    "STORAGE_MODES",
    "StorageLocation",
    "StorageMode",
    "global_store_dir",
    "location_for",
    "mode_named",
    "open_store",
    "place_key",
    "place_location",
    "place_name",
    "probe_server",
    "requested_server",
    "restore_storage",
    "server_settings",
    "storage_location",
]

STORAGE_MODES: tuple[StorageMode, ...] = ("local", "global", "server")
STORE_DIR_NAME = "qdrant-data"


@dataclass(frozen=True)
class StorageLocation:
    """Where one project's collections are."""

    mode: StorageMode
    # The folder holding one shard folder per collection (for a server, the
    # folder of a `local:` URL's local mode, else None).
    data_dir: Path | None
    server: ServerSettings | None = None

    @property
    def folder(self) -> Path:
        """The folder of an embedded store (local or global mode)."""
        if self.data_dir is None:
            raise ValueError(f"the {self.mode} store has no folder on this machine")
        return self.data_dir

    def collection_dir(self, collection: str) -> Path:
        if self.data_dir is None:
            raise ValueError(f"collections on {self.where(collection)} have no folder here")
        if self.server is not None:
            return self.data_dir / "collection" / collection
        return self.data_dir / collection

    def where(self, collection: str) -> str:
        """Where `collection` lives, for people: a folder, or a server and a name."""
        if self.server is not None:
            if self.server.shared_collection:
                return (
                    f"{self.server.url} collection {self.server.shared_collection} "
                    f"tenant {collection}"
                )
            return f"{self.server.url} collection {collection}"
        return str(self.collection_dir(collection))

    def usage(self, collections: list[str]) -> int:
        """Bytes `collections` take on this machine's disk (none on a server)."""
        if self.data_dir is None:
            return 0
        return sum(disk_usage(self.collection_dir(name)) for name in collections)

    def collections(self) -> list[str]:
        """The collections in an embedded store's folder (no shard opened)."""
        from cidx.store.edge import shard_exists

        try:
            return sorted(p.name for p in self.folder.iterdir() if shard_exists(p))
        except FileNotFoundError:
            return []

    def holds(self, collection: str) -> bool:
        """Whether `collection` is here (one `stat`, no shard opened). A store
        this user cannot look into holds nothing of theirs."""
        from cidx.store.edge import shard_exists

        if self.server is not None:
            raise ValueError("a server's collections are looked up on the server")
        try:
            return shard_exists(self.collection_dir(collection))
        except OSError:
            return False


# What `"shared_collection"` may be (the settings check the same pattern).
SHARED_NAME = re.compile(SHARED_COLLECTION_PATTERN)


def global_store_dir() -> Path:
    """The shared store of every project in global mode."""
    return data_dir() / STORE_DIR_NAME


def location_for(paths: ProjectPaths, mode: StorageMode) -> StorageLocation:
    """Where the project at `paths` keeps its collections in `mode` (an embedded
    mode: a server's location comes with its settings, `storage_location`)."""
    if mode == "global":
        return StorageLocation("global", global_store_dir())
    return StorageLocation("local", paths.index_dir / STORE_DIR_NAME)


def server_location(server: ServerSettings) -> StorageLocation:
    """The location of collections on the server `server` names."""
    return StorageLocation("server", local_path(server) if server.is_local else None, server)


def storage_location(paths: ProjectPaths, config: Config) -> StorageLocation:
    """The location `config.storage_mode` names for the project at `paths`."""
    if config.storage_mode == "server" and config.server is not None:
        return server_location(config.server)
    return location_for(paths, config.storage_mode)


def mode_named(value: str | None, flag: str) -> StorageMode:
    """The storage mode `value` names; UsageError naming `flag` otherwise."""
    for mode in STORAGE_MODES:
        if value == mode:
            return mode
    raise UsageError(f"{flag} must be one of {', '.join(STORAGE_MODES)}, not {value!r}.")


def place_key(mode: StorageMode, server: ServerSettings | None = None) -> str:
    """A storage place written down: the mode and, for a server, its settings
    (never an API key: the settings hold none). Equal places, equal keys."""
    doc: dict[str, object] = {"mode": mode}
    if server is not None:
        doc["server"] = server.model_dump(mode="json")
    return json.dumps(doc, sort_keys=True)


def place_location(paths: ProjectPaths, key: str) -> StorageLocation:
    """The location a `place_key` names, for the project at `paths`."""
    doc = json.loads(key)
    mode: StorageMode = doc["mode"]
    if mode == "server":
        return server_location(ServerSettings.model_validate(doc["server"]))
    return location_for(paths, mode)


def place_name(key: str) -> str:
    """A `place_key` for people: "local", "global" or "server URL"."""
    doc = json.loads(key)
    if doc["mode"] == "server":
        return f"server {doc['server']['url']}"
    return str(doc["mode"])


def requested_server(
    storage: StorageMode | None,
    url: str | None,
    *,
    ca_file: str | None = None,
    shared_collection: str | None = None,
    base: Path,
    flag: str = "--storage",
) -> tuple[StorageMode | None, ServerSettings | None]:
    """The storage mode and server a command's `--storage`/`--to` and `--qdrant-*`
    options ask for (a URL alone implies "server"); UsageError for options that
    do not go together."""
    if url is not None and storage is None:
        storage = "server"
    if storage == "server" and url is None:
        raise UsageError(f"{flag} server needs --qdrant-url URL (e.g. https://HOST:6333).")
    if storage != "server" and url is not None:
        raise UsageError(f"--qdrant-url goes with {flag} server, not {flag} {storage}.")
    if ca_file is not None and url is None:
        raise UsageError("--qdrant-ca-file goes with --qdrant-url.")
    if shared_collection is not None and url is None:
        raise UsageError("--qdrant-shared-collection goes with --qdrant-url.")
    if url is None:
        return storage, None
    return storage, server_settings(url, base, ca_file=ca_file, shared_collection=shared_collection)


def restore_storage(
    storage: str | None, url: str | None, *, ca_file: str | None, base: Path
) -> tuple[StorageMode | None, ServerSettings | None]:
    """What `cidx restore --storage local|server [--qdrant-url URL]` asks for."""
    if storage not in (None, "local", "server"):
        raise UsageError(f"--storage of a restore is local or server, not {storage!r}.")
    if storage == "server" and url is None:
        return "server", None  # the server-mode project's own server
    mode: StorageMode | None = storage  # type: ignore[assignment]
    return requested_server(mode, url, ca_file=ca_file, base=base)


def open_store(location: StorageLocation) -> VectorStore:
    """The store at `location`: a Qdrant server's, or the embedded engine."""
    if location.server is not None:
        from cidx.store.server import ServerStore

        store = ServerStore.connect(location.server)
        if location.server.shared_collection:
            from cidx.store.tenants import TenantStore

            return TenantStore(store, location.server.shared_collection)
        return store
    from cidx.store.edge import EdgeStore

    assert location.data_dir is not None
    return EdgeStore(location.data_dir)


def probe_server(settings: ServerSettings) -> None:
    """Raise the store's own error when the server cannot be used (unreachable,
    refusing the key, an unsupported version), before any config names it."""
    store = open_store(server_location(settings))
    try:
        store.list_collections()
    finally:
        store.close()


def server_settings(
    url: str, base: Path, *, ca_file: str | None = None, shared_collection: str | None = None
) -> ServerSettings:
    """Settings for the server at `url` as a user gave it (`local:` folders and
    `ca_file` relative to `base`); UsageError for a URL that names no server."""
    from pydantic import ValidationError

    if shared_collection is not None and not SHARED_NAME.fullmatch(shared_collection):
        raise UsageError(
            f"--qdrant-shared-collection: {shared_collection!r} cannot name a collection. Use "
            "letters, digits, '.', '_' and '-' (not first), e.g. team-code."
        )

    if url.startswith("local:") and not Path(url[len("local:") :]).is_absolute():
        url = "local:" + str((base / url[len("local:") :]).resolve())
    if ca_file is not None:
        ca = (base / ca_file).resolve()
        if not ca.is_file():
            raise UsageError(f"--qdrant-ca-file: {ca} is not a file.")
        ca_file = str(ca)
    try:
        return ServerSettings(url=url, ca_file=ca_file, shared_collection=shared_collection)
    except ValidationError as exc:
        problem = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise UsageError(f"--qdrant-url: {problem}.") from None
