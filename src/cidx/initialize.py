"""Creating, or replacing, a project's index config (`cidx init`, and the first
command in a project without an index).

`initialize` writes the config a new index is opened with: a new one, an
existing one with changed settings, or (with `force`) a replacement whose
old collections go once nothing points at them (`drop_replaced`). Moving an
existing index between stores is a migration (`cidx.migration`), never an init.
`to_bundled_model` replaces a read-only snapshot's config built with another
embedding model the same way (an index its owner holds migrates instead).
`opening_config` is the config an index opens with: created, migrated
(`cidx.migration`) or moved to the bundled model, and claimed in the
registry of the global store.
"""

from __future__ import annotations

import logging

from cidx.chunking import CHUNKER_VERSION
from cidx.collections import Collections
from cidx.config import (
    DEFAULT_MAX_FILE_SIZE,
    Config,
    collection_name_for,
    load_config,
    new_config,
    save_config,
)
from cidx.dualwrite import note_for_user
from cidx.embedding import embedding_settings, model_id
from cidx.errors import ConfigError, ServerError, UsageError
from cidx.migration import MigrationFn, run_pending
from cidx.project import ProjectPaths
from cidx.projectdata import Placed, project_collections, remove_collections
from cidx.recovery import has_orphaned_data, recreate_config
from cidx.registry import Registry, claim, mirror_aliases
from cidx.state import StateDB
from cidx.storage import StorageMode, open_store, storage_location
from cidx.store.server_settings import ServerSettings

__all__ = [
    "claim_global",
    "drop_replaced",
    "initialize",
    "opening_config",
    "to_bundled_model",
]

log = logging.getLogger(__name__)


def initialize(
    paths: ProjectPaths,
    *,
    max_file_size: int | None = None,
    force: bool = False,
    storage_mode: StorageMode | None = None,
    server: ServerSettings | None = None,
) -> Config:
    """Create (or with `force`, replace) the project's config. Caller holds the lock.

    A `storage_mode` other than an existing index's is written to its config:
    the index moves there when it next opens (`cidx.migration`). With `force`,
    a config that cannot be read is replaced too: the new index then owns
    none of the project's collections, so every one of them goes. The
    embedding cache stays, so rebuilding embeds nothing that was embedded.
    `storage` (with `server` for "server") chooses where a new index lives;
    moving an existing one elsewhere is a migration, not an init.
    """
    old: Config | None = None
    unreadable = False
    if paths.exists():
        try:
            old = load_config(paths)
        except ConfigError:
            if not force:
                raise
            unreadable = True
        if old is not None and not force:
            _refuse_server_move(paths, old, storage_mode, server)
            changes: dict[str, object] = {}
            if max_file_size is not None and max_file_size != old.max_file_size:
                changes["max_file_size"] = max_file_size
            if storage_mode is not None and storage_mode != old.storage_mode:
                changes["storage_mode"] = storage_mode
            if changes:
                old = old.model_copy(update=changes)
                save_config(paths, old)
            return old
    if not force and old is None and storage_mode != "server" and has_orphaned_data(paths):
        # Data without a config (it was deleted): keep the data.
        config = recreate_config(paths, max_file_size=max_file_size).config
        if storage_mode is not None and storage_mode != config.storage_mode:
            config = config.model_copy(update={"storage_mode": storage_mode})
            save_config(paths, config)
        return config
    config = new_config(
        paths,
        embedding=embedding_settings(),
        chunker_version=CHUNKER_VERSION,
        max_file_size=max_file_size if max_file_size is not None else DEFAULT_MAX_FILE_SIZE,
        project_id=old.project_id if old is not None else None,
        storage_mode=storage_mode or (old.storage_mode if old is not None else "local"),
        server=server if storage_mode == "server" else None,
    )
    if config.server is not None:
        _claim_server_collection(paths, config, old, force)
    # New config first; the old collections are removed only once nothing
    # points at them any more.
    save_config(paths, config)
    if old is not None or unreadable:
        drop_replaced(paths, config, old)
    return config


def _refuse_server_move(
    paths: ProjectPaths, old: Config, storage: StorageMode | None, server: ServerSettings | None
) -> None:
    """UsageError when an init asks to move an index to or from a Qdrant server
    (that is `cidx storage migrate`; moves between the embedded stores are
    migrations too, `cidx.migration`)."""
    if storage is None or "server" not in (storage, old.storage_mode):
        return
    url = server.url if server is not None else None
    old_url = old.server.url if old.server is not None else None
    if storage == old.storage_mode and url == old_url:
        return
    here = f"on {old_url}" if old_url else f"in {old.storage_mode} storage"
    to = f"--to {storage}" + (f" --qdrant-url {url}" if url else "")
    there = f"--storage {storage}" + (f" --qdrant-url {url}" if url else "")
    raise UsageError(
        f"The index of {paths.root} is {here}; `cidx init` does not move an index to or from "
        f"a Qdrant server. Move it without downtime with `cidx storage migrate {to}`, or "
        f"start a new, empty index there (cached embeddings are kept) with `cidx init "
        f"--force {there}`."
    )


def _claim_server_collection(
    paths: ProjectPaths, config: Config, old: Config | None, force: bool
) -> None:
    """Refuse (or with `force`, empty) a server collection that a new index's
    name points at but no config of this project did.

    Names come from the project's identity, so every clone of one repository
    names the same collection on a server. Two clones writing it would each
    trust their own manifest of what it holds; one writer per project across
    machines needs a lease held in the server, which is not built yet, so a
    new index never joins a collection it finds filled.
    """
    if old is not None and old.server == config.server and old.collection == config.collection:
        return  # this project's own collection: `drop_replaced` empties it
    assert config.server is not None
    store = open_store(storage_location(paths, config))
    try:
        if not store.collection_exists(config.collection):
            return
        if force:
            store.drop_collection(config.collection)
            return
    finally:
        store.close()
    raise UsageError(
        f"The collection {config.collection} exists on {config.server.url} already: the index "
        f"of another clone of {config.identity.id} (on this or another machine), or this "
        "project's own from before its .code-indexer/ was removed. cidx does not let two "
        "clones write one server collection yet (that needs a lease held in the server), so "
        "it will not use it. If it is this project's old index, replace it: `cidx init "
        f"--force --storage server --qdrant-url {config.server.url}`; otherwise keep this "
        "clone's index local (`cidx init --storage local`)."
    )


def _drop_from_server(paths: ProjectPaths, old: Config) -> None:
    """Empty the replaced index's collection on its server: manifest first, then
    the data, so a crash in between never leaves a manifest that lies."""
    db = StateDB(paths.state_db, collection=old.collection)
    try:
        store = open_store(storage_location(paths, old))
        try:
            collections = Collections(store, db, old.embedding.dim, old.collection)
            with db.transaction() as tx:
                db.manifest(old.collection).clear(tx)
            try:
                collections.drop(old.collection)
            except ServerError as exc:
                # The new index does not need the server the old one was on.
                log.warning(
                    "left the replaced collection %s in place: %s", old.collection, exc.message
                )
        finally:
            store.close()
    finally:
        db.close()


def drop_replaced(paths: ProjectPaths, config: Config, old: Config | None) -> None:
    """Remove what the index `config` replaced: the old collection (where the
    old config kept it), or (the old config unreadable) every collection of
    the project, in its own store and in the global store. The new index may
    have the old one's name (the same project, the same model): its data
    goes too, and opening creates it empty."""
    if old is not None and old.storage_mode == "server":
        _drop_from_server(paths, old)
        return
    if old is not None:
        gone = [Placed(storage_location(paths, old), old.collection)]
    else:
        gone = project_collections(paths, None)
    db = StateDB(paths.state_db, collection=old.collection if old is not None else None)
    try:
        remove_collections(paths, gone, db)
    finally:
        db.close()


def to_bundled_model(paths: ProjectPaths, config: Config) -> Config:
    """Move a read-only snapshot's private index built with another embedding
    model to the bundled one (an index this process owns migrates instead,
    see `cidx.dualwrite.follow_config`).

    Vectors of two models cannot share a collection, so the index gets a new
    collection (named for the model), whose manifest starts empty: the next
    sync is a full rebuild. The old collection goes once the config no
    longer points at it. Vectors the cache holds for the old model are
    simply never asked for again and age out. Caller holds the owner lock.
    """
    wanted = model_id(config.embedding.max_length)
    if config.embedding.model_id == wanted:
        return config
    note_for_user(
        f"The index in {paths.index_dir} was built with the embedding model "
        f"{config.embedding.model_id}; rebuilding it with the bundled model {wanted} "
        "(one full re-index)."
    )
    moved = config.model_copy(
        update={
            "embedding": embedding_settings(config.embedding.max_length),
            "collection": collection_name_for(
                config.storage_mode, config.identity.id, wanted, paths.root, config.naming_scheme
            ),
        }
    )
    save_config(paths, moved)
    db = StateDB(paths.state_db)
    try:
        with db.transaction() as tx:  # old names keep reaching the project's data
            db.aliases.retarget(tx, config.collection, moved.collection)
        if moved.storage_mode == "global":
            mirror_aliases(paths.root, db.aliases.all().values())
    finally:
        db.close()
    drop_replaced(paths, moved, config)
    return moved


def opening_config(
    paths: ProjectPaths, *, max_file_size: int | None, on_migration: MigrationFn | None
) -> Config:
    """The config the project's index opens with (`cidx.engine.Engine.open`),
    its config created when there is none, pending migrations run first
    (`on_migration` is told how one advances), and an index in the global
    store entered in the registry. Caller holds the owner lock."""
    if not paths.exists():
        config = initialize(paths, max_file_size=max_file_size)
    elif paths.index_location is None:
        # A change of the embedding model is a collection migration, run by
        # the engine once open (`cidx.dualwrite.follow_config`).
        config = run_pending(paths, on_migration)
    else:
        # A read-only snapshot: never moved between stores. Its own copy
        # of a local store follows the model like any index.
        config = load_config(paths)
        if config.storage_mode == "local":
            config = to_bundled_model(paths, config)
    if paths.index_location is None:
        claim_global(paths, config)
    return config


def claim_global(paths: ProjectPaths, config: Config) -> None:
    """Enter an index in the global store in the registry as its project's
    (`cidx.registry.claim`); an index stored elsewhere needs no entry."""
    if config.storage_mode == "global":
        with Registry() as registry:
            claim(
                registry,
                config.collection,
                root=paths.root,
                project_id=config.identity.id,
                model=config.embedding.model_id,
            )
