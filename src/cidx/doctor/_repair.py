"""The doctor's repairs, in dependency order: config, state DB, store, a sync,
then leftovers, stale owner files and permissions."""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

from cidx.config import Config
from cidx.doctor._checks import Findings, walk
from cidx.doctor._report import Check
from cidx.errors import CidxError
from cidx.messages import IndexSummary, Progress
from cidx.project import ProjectPaths
from cidx.recovery import leftovers, rebuild_state, recreate_config
from cidx.registry import Registry, alias_drift
from cidx.state import StateDB
from cidx.storage import open_store, storage_location

ProgressFn = Callable[[Progress], None]


def repair_index(
    paths: ProjectPaths, found: Findings, progress: ProgressFn | None
) -> tuple[list[str], IndexSummary | None]:
    from cidx.indexer import META_DIRTY, META_STORE_DAMAGED

    checks = {c.name: c for c in found.checks}
    actions: list[str] = []
    config = found.config
    summary: IndexSummary | None = None
    broken = any(checks[n].status in ("problem", "skipped") for n in _INDEX_CHECKS)
    try:
        if config is None:
            recreated = recreate_config(paths)
            config = recreated.config
            if recreated.kept_collection:
                actions.append(
                    f"Recreated {paths.config_file} around the existing collection "
                    f"{recreated.kept_collection}."
                )
            else:
                actions.append(
                    f"Recreated {paths.config_file}; no usable collection was found, so the "
                    "index is rebuilt from the files."
                )
        store_damaged = found.store_damaged
        if checks["state"].status == "problem":
            store = open_store(storage_location(paths, config)) if not store_damaged else None
            try:
                rebuilt = rebuild_state(paths, config, store)
            finally:
                if store is not None:
                    store.close()
            store_damaged = store_damaged or rebuilt.store_damaged
            aside = f" (the damaged file is at {rebuilt.set_aside})" if rebuilt.set_aside else ""
            actions.append(
                f"Rebuilt {paths.state_db} from the store: {rebuilt.files:,} files, "
                f"{rebuilt.points:,} points, {rebuilt.vectors:,} cached vectors{aside}."
            )
        if store_damaged or found.drift:
            db = StateDB(paths.state_db, collection=config.collection)
            manifest = db.manifest(config.collection)
            try:
                with db.transaction() as tx:
                    if store_damaged:
                        manifest.set_mark(META_STORE_DAMAGED, "found by `cidx doctor`", tx)
                    manifest.set_mark(META_DIRTY, str(time.time()), tx)
            finally:
                db.close()
        if broken:
            summary = _sync(paths, progress)
            actions.append("Synced the index: " + _summary_text(summary))
    except CidxError as exc:
        actions.append(f"Could not finish the repair: {exc.message}")
        return actions, summary
    if checks["alias-registry"].status == "problem":
        actions.append(_align_alias_registry(paths, config))
    actions.extend(_clean(paths, config, checks))
    return actions, summary


def _align_alias_registry(paths: ProjectPaths, config: Config) -> str:
    """Record each alias in both the state database and the registry. None is
    removed: one in the registry only is restored to the state database (a
    stale one is the user's to remove, `cidx project remove-alias`); where
    the two differ, the state database, which reads go through, wins."""
    db = StateDB(paths.state_db, collection=config.collection)
    try:
        with Registry() as registry:
            drift = alias_drift(registry, paths.root, db.aliases.all().values())
            with db.transaction() as tx:
                for alias in drift.registry_only:
                    db.aliases.put(tx, alias)
            registry.set_aliases(paths.root, db.aliases.all().values())
    finally:
        db.close()
    return (
        f"Recorded {len(drift.names):,} aliases in both the state database and the registry "
        f"of the global store ({', '.join(drift.names[:5])})."
    )


# Checks whose problems a sync is needed to repair.
_INDEX_CHECKS = ("config", "state", "store", "counts", "ids", "payloads", "vectors")


def _sync(paths: ProjectPaths, progress: ProgressFn | None) -> IndexSummary:
    from cidx.engine import Engine

    engine, _ = Engine.open(paths)
    try:
        return engine.sync(progress=progress)
    finally:
        engine.close()


def _summary_text(summary: IndexSummary) -> str:
    text = (
        f"{summary.files_scanned:,} files scanned, {summary.chunks_embedded:,} chunks "
        f"embedded, {summary.chunks_reused:,} from cache."
    )
    return " ".join([text, *summary.repairs])


def _clean(paths: ProjectPaths, config: Config, checks: dict[str, Check]) -> list[str]:
    actions: list[str] = []
    unused = leftovers(paths, config.collection)
    for path in unused:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if unused:
        actions.append(f"Deleted {len(unused)} unused entries from {paths.index_dir}.")
    if paths.socket_path.exists() or paths.socket_path.is_symlink():
        # The doctor holds the lock, so no owner serves this socket.
        paths.socket_path.unlink(missing_ok=True)
        actions.append(f"Removed the stale {paths.socket_path.name}.")
    if checks["permissions"].status in ("warning", "problem"):
        changed = _make_private(paths.index_dir)
        if changed:
            actions.append(f"Made {changed} entries of {paths.index_dir} private to you.")
    return actions


def _make_private(root: Path) -> int:
    """Folders 0700, files 0600 (the owner's own entries only)."""
    uid = os.getuid()
    changed = 0
    for path in walk(root):
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) or (uid != 0 and st.st_uid != uid):
            continue
        mode = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
            changed += 1
    return changed
