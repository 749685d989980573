"""A project's identity in use: what it is now, and moving its data when it changes.

`project_info` says who the project is (`cidx.identity`) and what that
means for its collections and aliases. When the id derived now differs
from the one its collections are named after — typically a local project
gained a git remote — `update_remote` moves the data to the new names:

    1. an intent file (`.code-indexer/identity-move.json`) records the move;
    2. the shard folder is renamed (one atomic rename);
    3. one state-DB transaction moves the manifest to the new name, points
       existing aliases at it, and adds an alias old → new (who, why, when);
       in the global store, the registry then records the new name as the
       project's and mirrors its aliases (`cidx.registry`);
    4. the config is rewritten (new identity and collection);
    5. the intent file is removed.

Every step is idempotent and decided from what is on disk, so a re-run
after a crash at any point — by `update_remote`, or by the next command
that opens the index (`finish_pending_move`) — converges.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from cidx.collections import Collections, sync_native_aliases
from cidx.config import Config, IdentityRecord, collection_name_for, load_config, save_config
from cidx.errors import CidxError, UsageError
from cidx.failpoints import failpoint
from cidx.fsutil import write_atomic
from cidx.identity import project_identity
from cidx.project import ProjectPaths, require_writable
from cidx.registry import Registry, mirror_aliases
from cidx.state import Alias, StateDB
from cidx.storage import open_store, storage_location
from cidx.store import NativeAliases

__all__ = [
    "Alias",
    "CollectionMove",
    "ProjectInfo",
    "RemoteUpdate",
    "create_alias",
    "find_alias",
    "finish_pending_move",
    "list_aliases",
    "metadata",
    "plan_update",
    "project_info",
    "remove_alias",
    "update_remote",
]

MOVE_FILE = "identity-move.json"


@dataclass(frozen=True)
class ProjectInfo:
    root: str
    id: str  # the id the collections are named after
    source: str  # config, git-remote, path or legacy
    derived_id: str  # the id the project has now
    derived_source: str
    remote: str | None  # the remote it comes from (its name, never its URL)
    changed: bool  # the two differ: `cidx project update-remote` moves the data
    collection: str
    collections: list[str]
    aliases: list[Alias]


@dataclass(frozen=True)
class CollectionMove:
    old: str
    new: str


@dataclass(frozen=True)
class RemoteUpdate:
    """What `update_remote` found, or did (`done`)."""

    old_id: str
    new_id: str
    source: str
    moves: list[CollectionMove]
    status: Literal["unchanged", "planned", "done"]
    replaced: list[str]  # existing target collections dropped (--force)


@contextlib.contextmanager
def metadata(paths: ProjectPaths) -> Iterator[tuple[Config, Collections]]:
    """The config and collections of an existing index, for naming and aliases.

    No shard is opened, so this needs no owner lock: aliases live in the
    state database, which any process may update.
    """
    config = load_config(paths)
    db = StateDB(paths.state_db, collection=config.collection)
    try:
        store = open_store(storage_location(paths, config))
        try:
            yield config, Collections(store, db, config.embedding.dim, config.collection)
        finally:
            store.close()
    finally:
        db.close()


def project_info(paths: ProjectPaths) -> ProjectInfo:
    with metadata(paths) as (config, collections):
        derived = project_identity(paths.root, config.project_id)
        mine = {config.collection} | {a.target for a in collections.aliases()}
        return ProjectInfo(
            root=str(paths.root),
            id=config.identity.id,
            source=config.identity.source,
            derived_id=derived.id,
            derived_source=derived.source,
            remote=derived.remote,
            changed=derived.id != config.identity.id,
            collection=config.collection,
            collections=sorted(n for n in collections.names() if n in mine),
            aliases=collections.aliases(),
        )


def list_aliases(paths: ProjectPaths) -> list[Alias]:
    with metadata(paths) as (_config, collections):
        return collections.aliases()


def create_alias(paths: ProjectPaths, name: str, target: str, *, reason: str) -> Alias:
    """An alias made by hand (`cidx collections alias create`)."""
    require_writable(paths)
    with metadata(paths) as (config, collections):
        alias = collections.create_alias(name, target, created_by="user", reason=reason)
        try:
            _mirror(paths, config, collections)
        except BaseException:
            collections.delete_alias(name)  # the server refused it: not made at all
            raise
        return alias


def remove_alias(paths: ProjectPaths, name: str) -> Alias:
    require_writable(paths)
    with metadata(paths) as (config, collections):
        alias = collections.delete_alias(name)
        try:
            _mirror(paths, config, collections)
        except BaseException:
            with collections.db.transaction() as tx:  # kept where it still works
                collections.db.aliases.put(tx, alias)
            raise
        return alias


def _mirror(paths: ProjectPaths, config: Config, collections: Collections) -> None:
    """In the global store, the registry keeps the project's aliases too; on a
    server they are the server's own aliases as well (`sync_native_aliases`)."""
    if config.storage_mode == "global":
        mirror_aliases(paths.root, collections.aliases())
    if isinstance(collections.store, NativeAliases):
        sync_native_aliases(collections.store, collections, config.collection)


def find_alias(paths: ProjectPaths, name: str) -> Alias | None:
    with metadata(paths) as (_config, collections):
        return collections.alias(name)


def plan_update(paths: ProjectPaths, config: Config) -> RemoteUpdate:
    pending = _read_intent(paths)
    if pending is not None:  # a move a crash interrupted: the plan is to finish it
        return RemoteUpdate(
            pending.old_id, pending.new_id, pending.source, pending.moves, "planned", []
        )
    derived = project_identity(paths.root, config.project_id)
    if derived.id == config.identity.id:
        return RemoteUpdate(config.identity.id, derived.id, derived.source, [], "unchanged", [])
    # In the global store the name also hashes the root (`collection_name_for`).
    new = collection_name_for(
        config.storage_mode,
        derived.id,
        config.embedding.model_id,
        paths.root,
        config.naming_scheme,
    )
    return RemoteUpdate(
        config.identity.id,
        derived.id,
        derived.source,
        [CollectionMove(config.collection, new)],
        "planned",
        [],
    )


def update_remote(paths: ProjectPaths, *, force: bool = False) -> RemoteUpdate:
    """Move the project's data to the names its identity gives now (caller holds
    the owner lock). Refuses to replace an existing target unless `force`."""
    pending = _read_intent(paths)
    if pending is not None:
        return _finish(paths, pending, force=force)
    config = load_config(paths)
    plan = plan_update(paths, config)
    if plan.status == "unchanged":
        return plan
    intent = _Intent(plan.old_id, plan.new_id, plan.source, plan.moves)
    with metadata(paths) as (_config, collections):
        taken = [m.new for m in plan.moves if collections.exists(m.new) and m.new != m.old]
    if taken and not force:
        raise UsageError(
            f"The collection {taken[0]!r} exists already (another clone of this repository "
            "in the same store, or an earlier move). Pass --force to replace it with this "
            "project's data."
        )
    write_atomic(paths.index_dir / MOVE_FILE, intent.dumps())
    failpoint("identity_after_intent")
    return _finish(paths, intent, force=force)


def finish_pending_move(paths: ProjectPaths) -> RemoteUpdate | None:
    """Complete a move a crash interrupted, if one is recorded (caller holds the lock)."""
    intent = _read_intent(paths)
    return None if intent is None else _finish(paths, intent, force=True)


@dataclass(frozen=True)
class _Intent:
    """A move under way, as its intent file records it."""

    old_id: str
    new_id: str
    source: str
    moves: list[CollectionMove]

    def dumps(self) -> str:
        return (
            json.dumps(
                {
                    "old_id": self.old_id,
                    "new_id": self.new_id,
                    "source": self.source,
                    "moves": [[m.old, m.new] for m in self.moves],
                }
            )
            + "\n"
        )


def _read_intent(paths: ProjectPaths) -> _Intent | None:
    path = paths.index_dir / MOVE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _Intent(
            str(data["old_id"]),
            str(data["new_id"]),
            str(data["source"]),
            [CollectionMove(str(a), str(b)) for a, b in data["moves"]],
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CidxError(
            f"The record of an interrupted identity move, {path}, cannot be read ({exc}). "
            f"Delete it and run `cidx project update-remote`: it works out what is left to "
            "do from the data itself."
        ) from None


def _finish(paths: ProjectPaths, intent: _Intent, *, force: bool) -> RemoteUpdate:
    moves, new_id, source = intent.moves, intent.new_id, intent.source
    replaced: list[str] = []
    config = load_config(paths)
    with metadata(paths) as (_config, collections):
        db = collections.db
        for move in moves:
            # 2. the data: renamed unless a crash left it renamed already.
            if collections.exists(move.old) and collections.alias(move.old) is None:
                if collections.store.collection_exists(move.new):
                    if not force:
                        raise UsageError(f"The collection {move.new!r} exists already.")
                    with db.transaction() as tx:
                        db.manifest(move.new).clear(tx)
                    collections.drop(move.new)
                    replaced.append(move.new)
                collections.rename(move.old, move.new)
                failpoint("identity_after_rename")
            # 3. manifest, aliases: one transaction, so all or nothing.
            with db.transaction() as tx:
                db.manifest(move.old).rename(tx, move.new)  # nothing left to move: a no-op
                db.aliases.retarget(tx, move.old, move.new)
                if collections.alias(move.old) is None:
                    db.aliases.put(
                        tx,
                        Alias(
                            move.old,
                            move.new,
                            "cidx project update-remote",
                            f"the project's id changed from {intent.old_id} to {new_id}",
                            time.time(),
                            None,
                        ),
                    )
            failpoint("identity_after_alias")
        if config.storage_mode == "global":
            _register(paths, config, new_id, moves)
            _mirror(paths, config, collections)
            failpoint("identity_after_registry")
    # 4. the config.
    primary = next((m.new for m in moves if m.old == config.collection), config.collection)
    identity = IdentityRecord.model_validate({"id": new_id, "source": source})
    updated = config.model_copy(update={"identity": identity, "collection": primary})
    if updated != config:
        save_config(paths, updated)
    failpoint("identity_after_config")
    # 5. done.
    (paths.index_dir / MOVE_FILE).unlink(missing_ok=True)
    return RemoteUpdate(intent.old_id, new_id, source, moves, "done", replaced)


def _register(
    paths: ProjectPaths, config: Config, new_id: str, moves: list[CollectionMove]
) -> None:
    """The global store's registry: the new names are the project's, the old
    ones no collection's (they are aliases now). Idempotent."""
    with Registry() as registry:
        for move in moves:
            registry.put(
                move.new, root=paths.root, project_id=new_id, model=config.embedding.model_id
            )
            entry = registry.entry(move.old)
            if entry is not None and entry.project_root == str(paths.root):
                registry.forget(move.old)
