"""Projects that were moved or copied: telling which, and `cidx fix-config`.

A project's config records the absolute root its index was made at
(`project_root`). That value is trusted for nothing but this: when the
index is opened at another root, the project was moved or copied there.

How a move is told from a clone: a **clone** is a copy whose original still
exists at the recorded root with the same identity (a config there records
the same `identity.id`, see `cidx.identity`). Anything else — nothing left
at the recorded root, or another project there — is a **move**.

- A move keeps the project's identity; only the recorded root changes. In
  local storage nothing else refers to the old place, so every command that
  opens the index fixes a move itself and says so in one line
  (`check_on_open`).
- A clone becomes an independent project: the identity derived at its new
  place (`cidx.identity.project_identity`), and new names for the
  collections made under the old identity (the shard folders, their
  manifest rows and the aliases that name them are renamed). A path-based
  identity is new wherever the copy is; an identity from a git remote, or
  one the user set, is the same repository's and stays: in a project-local
  store the clone's collections are its own anyway, so only the root
  changes. Commands that open a clone say so and name
  `cidx fix-config`, which does it; `cidx clone` does it to its copy. A
  clone in the global store cannot work as it is (it shares the original's
  collection), so the first command that opens it does the fix itself.

A fix is crash-safe: the old config is backed up, the plan is written to the
state database before anything moves (the journal), the manifest rows are
renamed in one transaction, then the shard folders (each rename atomic), and
the new config is written last. A fix killed at any point is finished by
the next command that opens the index, or by `cidx fix-config`.

Where the collections live comes from `cidx.storage`. In the global store
they are shared with other projects: there a clone's names also carry its
place (`collection_name(..., place=root)`), and making its collections its
own means copying them to the new names (`cidx.sharedcopy`, the global
store's part of a fix).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from cidx.config import Config, IdentityRecord, load_config, read_config, save_config
from cidx.errors import ConfigError, NoIndexError, StoreError
from cidx.failpoints import failpoint
from cidx.fsutil import fsync_folder, write_atomic
from cidx.identity import NamingScheme, collection_name, model_slug, project_identity
from cidx.messages import ConfigChange, FixReport, RelocationKind, Verification
from cidx.owner.lock import OwnerLock
from cidx.owner.waiting import WAIT_FOREVER, WaitPolicy, take_lock
from cidx.pause import Paused
from cidx.project import ProjectPaths, project_paths
from cidx.sharedcopy import own_shared_collections
from cidx.state import Alias, StateDB
from cidx.storage import StorageLocation, storage_location
from cidx.verification import verify

__all__ = [
    "Relocation",
    "check_on_open",
    "detect",
    "fix_config",
    "fix_held",
]

NoticeFn = Callable[[str], None]

# The state database's meta key holding the plan of a fix under way.
JOURNAL_KEY = "relocation"
BACKUP_INFIX = ".backup-"


@dataclass(frozen=True)
class Relocation:
    """Where the config says the project is, where it is, and what that makes it."""

    kind: RelocationKind
    recorded: str
    actual: str
    reason: str


def detect(paths: ProjectPaths, config: Config) -> Relocation:
    """Whether the project at `paths` was moved or copied from where `config` says."""
    recorded, actual = config.project_root, str(paths.root)
    if recorded == actual or _same_folder(recorded, actual):
        return Relocation("none", recorded, actual, f"The config records {actual}, where it is.")
    original = _config_at(Path(recorded))
    if original is not None and _identity_of(original) == config.identity.id:
        return Relocation(
            "clone",
            recorded,
            actual,
            f"It is a copy of {recorded}: the original is still there, with the same identity.",
        )
    why = (
        "nothing is indexed there any more"
        if original is None
        else "another project is indexed there now"
    )
    return Relocation("move", recorded, actual, f"It was moved here from {recorded} ({why}).")


def _identity_of(raw: dict[str, object]) -> str | None:
    """The identity a raw config records (a version-1 config: its project id)."""
    identity = raw.get("identity")
    if isinstance(identity, dict) and isinstance(identity.get("id"), str):
        return str(identity["id"])
    legacy = raw.get("project_id")
    return legacy if isinstance(legacy, str) and raw.get("schema_version") == 1 else None


def _same_folder(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _config_at(root: Path) -> dict[str, object] | None:
    """The raw config of the project at `root`, if one can be read there."""
    try:
        raw = json.loads(ProjectPaths(root).config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


# -- on every open -----------------------------------------------------------


def check_on_open(paths: ProjectPaths, notice: NoticeFn) -> None:
    """What every command that opens an index does first (holding the lock).

    Fixes a moved project in local storage and a clone in the global store
    (and says so), finishes a fix that was killed part-way, and tells about
    a clone in local storage (or a move in the global store), naming
    `cidx fix-config`. Costs one read of the config when the
    project is where its config says.
    """
    if not paths.config_file.is_file():
        return
    try:
        # Not written back: an older schema is upgraded (and recorded) by the
        # migrations that run when the index opens.
        config = read_config(paths, write_back=False)[0]
    except ConfigError:
        return  # opening the index reports it, with the repair
    found = detect(paths, config)
    if found.kind == "none":
        return
    finished = _finish_journal(paths, config)
    if finished is not None:
        notice(
            f"Finished an interrupted `cidx fix-config` in {paths.root}: the project is now "
            f"{finished.identity.id}, with collection {finished.collection}."
        )
        return
    if found.kind == "move" and config.storage_mode == "local":
        _save_root(paths, config)
        notice(
            f"This project moved here from {found.recorded}: its config now records "
            f"{paths.root} (nothing else in a project-local index refers to the old place)."
        )
        return
    if found.kind == "clone" and config.storage_mode == "global":
        # Sharing the original's collections would let each project overwrite
        # the other's index, so the copy cannot be used until it has its own.
        fixed = fix_held(paths, quick=True)
        notice(
            f"{paths.root} is a copy of {found.recorded}, whose collection in the global "
            f"store it shared; it now has its own ({_collection_of(fixed)}) and is an "
            "independent project."
        )
        return
    if found.kind == "clone":
        notice(
            f"{paths.root} is a copy of {found.recorded} and still shares its identity; it "
            "works as it is. Run `cidx fix-config` here to make it an independent project."
        )
        return
    notice(
        f"This project moved here from {found.recorded}, and its index is in the global "
        "store. Run `cidx fix-config` here to update it."
    )


def _collection_of(report: FixReport) -> str:
    """The collection a fix gave the project (the last change of that name)."""
    names = [c.new for c in report.changes if c.field == "collection"]
    return names[0] if names else "unchanged"


def _save_root(paths: ProjectPaths, config: Config) -> None:
    save_config(paths, config.model_copy(update={"project_root": str(paths.root)}))


# -- fix-config ----------------------------------------------------------------


def fix_config(
    start: Path | None = None,
    *,
    dry_run: bool = False,
    force: bool = False,
    wait: WaitPolicy = WAIT_FOREVER,
) -> FixReport:
    """`cidx fix-config`: make the config match where the project is now.

    With `force`, the project becomes independent (the identity derived at its
    place, and collection names of its own) even when nothing says it is a
    copy — a copy whose original was moved, or lives on another machine.
    Waits for the lock as `wait` says. Idempotent: a second run finds nothing to do.
    """
    paths = project_paths(start)
    if not paths.exists():
        raise NoIndexError(
            f"There is no cidx index in {paths.root} (no {paths.config_file}). Run "
            "`cidx fix-config` in the folder of a project you moved or copied."
        )
    if dry_run:
        return fix_held(paths, force=force, dry_run=True)
    lock = OwnerLock(paths, "fix-config")
    take_lock(lock, paths, wait)
    try:
        return fix_held(paths, force=force)
    finally:
        lock.release()


def fix_held(
    paths: ProjectPaths,
    *,
    force: bool = False,
    clone_of: Path | None = None,
    dry_run: bool = False,
    quick: bool = False,
    original: Paused | None = None,
) -> FixReport:
    """`fix_config` for a caller that holds the project's lock (or, with
    `dry_run`, changes nothing).

    `clone_of` makes the project independent as a copy of that folder (`cidx
    clone`, whatever the config says); `quick` checks counts without opening
    the store, which costs seconds per 100k points. `original` is the pause
    of the project copied from that the caller holds (its collections in the
    global store are copied while it is still, not paused again).
    """
    started = time.perf_counter()
    before = load_config(paths)
    finished = None if dry_run else _finish_journal(paths, before)
    config = finished or before
    changes = _changes(before, config) if finished is not None else []
    found = detect(paths, config)
    kind, reason = found.kind, found.reason
    if clone_of is not None:
        kind, reason = "clone", f"It is a copy of {clone_of} made by `cidx clone`."
    elif force and kind != "clone":
        kind = "clone"
        reason += (
            " Made independent as asked (--force): the identity derived at its place and "
            "collection names of its own."
        )
    location = storage_location(paths, config)
    plan = _plan(paths, config, kind, location) if kind != "none" else None
    if plan is not None:
        changes += _changes(config, plan.config, plan.renames)
    backup: str | None = None
    verification: Verification | None = None
    if plan is not None and not dry_run:
        backup = str(_backup(paths))
        _apply(paths, config, plan, location, original)
        config = plan.config
    if not dry_run and changes:
        verification = verify(paths, config, quick=quick)
    return FixReport(
        root=str(paths.root),
        kind=kind,
        recorded_root=found.recorded,
        reason=reason,
        storage_mode=config.storage_mode,
        changes=changes,
        dry_run=dry_run,
        backup=backup,
        verification=verification,
        finished_interrupted=finished is not None,
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class _Plan:
    config: Config  # the config to write
    renames: list[tuple[str, str]]  # collections: (old name, new name)


def _plan(
    paths: ProjectPaths, config: Config, kind: RelocationKind, location: StorageLocation
) -> _Plan:
    root = {"project_root": str(paths.root)}
    if kind != "clone":
        return _Plan(config.model_copy(update=root), [])
    who = project_identity(paths.root, config.project_id)
    # The global store's names carry the project's place too (the seam).
    place = paths.root if location.mode != "local" else None
    model = config.embedding.model_id
    scheme = config.naming_scheme
    primary = collection_name(who.id, model, place=place, scheme=scheme)
    renames = [(config.collection, primary)] if primary != config.collection else []
    # Other collections made under the old identity (another model's, during
    # a migration) follow it; anything else in the store is left alone.
    old_prefixes = (
        _id_prefix(config.identity.id, None, scheme),
        f"cidx-{config.identity.id[:12]}-",  # names given before identities were derived
    )
    new_prefix = _id_prefix(who.id, place, scheme)
    for name in _collections_in(location):
        if name == config.collection or name == primary:
            continue
        for old_prefix in old_prefixes:
            if name.startswith(old_prefix):
                renames.append((name, new_prefix + name[len(old_prefix) :]))
                break
    identity = IdentityRecord(id=who.id, source=who.source)
    update = {**root, "identity": identity, "collection": primary}
    return _Plan(config.model_copy(update=update), renames)


def _id_prefix(project_id: str, place: Path | None, scheme: NamingScheme) -> str:
    """What every collection name of `project_id` starts with (the model's slug follows)."""
    name = collection_name(project_id, "m", place=place, scheme=scheme)
    return name[: -len(model_slug("m"))]


def _collections_in(location: StorageLocation) -> list[str]:
    """The collections whose shard folders are in a project-local store."""
    if location.mode != "local" or not location.folder.is_dir():
        return []
    return sorted(p.name for p in location.folder.iterdir() if (p / "edge_config.json").is_file())


def _changes(
    old: Config, new: Config, renames: list[tuple[str, str]] | None = None
) -> list[ConfigChange]:
    out: list[ConfigChange] = []
    for name, before, after in (
        ("project_root", old.project_root, new.project_root),
        ("identity", old.identity.id, new.identity.id),
        ("collection", old.collection, new.collection),
    ):
        if before != after:
            out.append(ConfigChange(name, before, after))
    for before, after in renames or []:
        if before != old.collection:
            out.append(ConfigChange("collection", before, after))
    return out


def _backup(paths: ProjectPaths) -> Path:
    """A copy of config.json as it is, beside it (private, like it)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = paths.config_file.with_name(f"config.json{BACKUP_INFIX}{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = paths.config_file.with_name(f"config.json{BACKUP_INFIX}{stamp}-{n}")
    write_atomic(target, paths.config_file.read_text(encoding="utf-8"), mode=0o600)
    return target


# -- applying a plan, crash-safe -----------------------------------------------


def _apply(
    paths: ProjectPaths,
    config: Config,
    plan: _Plan,
    location: StorageLocation,
    original: Paused | None,
) -> None:
    """Carry out `plan`: journal, manifest rows, shard folders, config, in that order."""
    if plan.renames:
        with _state(paths, config) as db, db.transaction() as tx:
            db.set_meta(JOURNAL_KEY, _journal(plan), tx)
        failpoint("fix-config-journaled")
        _rename_all(paths, config, plan, location, original)
        failpoint("fix-config-renamed")
    save_config(paths, plan.config)
    failpoint("fix-config-saved")
    if plan.renames:
        with _state(paths, plan.config) as db, db.transaction() as tx:
            db.set_meta(JOURNAL_KEY, None, tx)


def _rename_all(
    paths: ProjectPaths,
    config: Config,
    plan: _Plan,
    location: StorageLocation,
    original: Paused | None = None,
) -> None:
    with _state(paths, config) as db, db.transaction() as tx:
        for old, new in plan.renames:
            manifest = db.manifest(old)
            # The new name's manifest first: it is empty but after a crash,
            # and counting the old one reads every row.
            if db.manifest(new).counts() != (0, 0) and manifest.counts() != (0, 0):
                raise StoreError(
                    f"The state database of {paths.root} lists files under both {old} and "
                    f"{new}, so cidx cannot tell which this project uses. Run `cidx init "
                    "--force` there for a new index (cached embeddings are kept)."
                )
            manifest.rename(tx, new)
            db.aliases.retarget(tx, old, new)
        aliases = list(db.aliases.all().values())
    failpoint("fix-config-manifest")
    _own_collections(location, plan.renames, config, plan.config, aliases, original)


def _own_collections(
    location: StorageLocation,
    renames: list[tuple[str, str]],
    old: Config,
    new: Config,
    aliases: list[Alias],
    original: Paused | None,
) -> None:
    """Give the renamed collections their new names where they are stored."""
    if location.mode == "local":
        _rename_shards(location.folder, renames)
    elif renames:  # a move in the global store keeps its names
        # Shared with the original there: copied (`cidx.sharedcopy`).
        own_shared_collections(location, renames, old, new, aliases, original)


def _rename_shards(data_dir: Path, renames: list[tuple[str, str]]) -> None:
    """Rename each shard folder (atomic; a rename already done is skipped)."""
    for old, new in renames:
        source, target = data_dir / old, data_dir / new
        if source.exists() and target.exists():
            raise StoreError(
                f"Both {source} and {target} exist, so cidx cannot tell which one this "
                "project uses. Move the one you do not need out of the way, then run "
                "`cidx fix-config` again."
            )
        if source.exists():
            os.rename(source, target)
    if data_dir.is_dir():
        fsync_folder(data_dir)


def _journal(plan: _Plan) -> str:
    return json.dumps(
        {
            "project_root": plan.config.project_root,
            "identity": plan.config.identity.model_dump(),
            "collection": plan.config.collection,
            "renames": plan.renames,
        }
    )


def _finish_journal(paths: ProjectPaths, config: Config) -> Config | None:
    """Finish a fix that was killed part-way: the config it was writing, or
    None when none was under way (a journal whose config was already
    written is only cleared). Caller holds the lock."""
    if not paths.state_db.is_file():
        return None
    with _state(paths, config) as db:
        raw = db.get_meta(JOURNAL_KEY)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        renames = [(str(a), str(b)) for a, b in data["renames"]]
        target = config.model_copy(
            update={
                "project_root": str(data["project_root"]),
                "identity": IdentityRecord.model_validate(data["identity"]),
                "collection": str(data["collection"]),
            }
        )
    except (ValueError, KeyError, TypeError, ValidationError):
        target, renames = None, []
    if target is None or (
        config.identity == target.identity and config.collection == target.collection
    ):
        # Done but for clearing the journal (or unreadable: nothing to go by).
        with _state(paths, config) as db, db.transaction() as tx:
            db.set_meta(JOURNAL_KEY, None, tx)
        return None
    plan = _Plan(target, renames)
    location = storage_location(paths, config)
    _rename_all(paths, config, plan, location)
    save_config(paths, target)
    with _state(paths, target) as db, db.transaction() as tx:
        db.set_meta(JOURNAL_KEY, None, tx)
    return target


@contextlib.contextmanager
def _state(paths: ProjectPaths, config: Config) -> Iterator[StateDB]:
    db = StateDB(paths.state_db, collection=config.collection)
    try:
        yield db
    finally:
        db.close()
