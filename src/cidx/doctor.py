"""`cidx doctor`: a full check of one project's index, and the repairs it can make.

Each check looks at one thing — the config, the state database, the store's
shard, whether manifest and store agree (counts, point ids, every payload,
a sample of vectors against the embedding cache), leftovers in the index
folder, the owner's lock and socket, permissions, free space — and reports
it with the next step. A check that cannot run because an earlier one
failed (no readable config, say) is reported as skipped.

With `repair`, what can be fixed is fixed, in dependency order: the config
is recreated around the existing data, the state database rebuilt from the
shard, a damaged shard marked so that the sync that follows sets it aside
and rebuilds it, drift reconciled by that sync; then leftovers, stale owner
files and permissions are cleaned up, and every check runs again, so the
report says what was repaired and what still needs a person.

The doctor needs the index to itself: it waits for a one-shot command to
finish, and refuses to run beside a long-lived owner (`cidx watch`, ...).
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cidx.config import Config, load_config
from cidx.errors import (
    CidxError,
    ConfigError,
    LockBusyError,
    NoIndexError,
    StoreDamagedError,
)
from cidx.formatting import size as size_text
from cidx.fsutil import free_bytes
from cidx.messages import IndexSummary, Progress
from cidx.owner.lock import OwnerLock, read_owner
from cidx.project import ProjectPaths, project_paths
from cidx.recovery import leftovers, rebuild_state, recreate_config
from cidx.representation import dense_text, text_hash
from cidx.service import WAIT_FOREVER, WaitPolicy
from cidx.state import StateDB
from cidx.store import VectorStore, open_store

if TYPE_CHECKING:
    from cidx.chunking import Chunk

CheckStatus = Literal["ok", "warning", "problem", "repaired", "skipped"]
ProgressFn = Callable[[Progress], None]

# Owners that keep the index open until stopped: the doctor does not wait for them.
LONG_LIVED = frozenset({"watch", "sync", "serve", "mcp"})
# Vectors compared with the embedding cache (a full comparison reads the
# whole cache; a sample finds a shard whose vector file was overwritten).
VECTOR_SAMPLE = 256
MIN_COSINE = 0.999
# Less free space than this on the index's disk is worth a warning.
LOW_SPACE = 64 * 1024 * 1024
# Payload fields every point has (cidx.representation.payload).
PAYLOAD_FIELDS = ("path", "language", "kind", "symbol", "start_line", "end_line", "text")
CHECK_NAMES = (
    "config",
    "state",
    "store",
    "counts",
    "ids",
    "payloads",
    "vectors",
    "leftovers",
    "owner",
    "permissions",
    "disk",
)


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    # The command (or action) that fixes it, when something is wrong.
    next_step: str | None = None


@dataclass(frozen=True)
class DoctorReport:
    root: str
    index_dir: str
    repair: bool
    checks: list[Check]
    # What `repair` did, one sentence each.
    actions: list[str] = field(default_factory=list)
    # The sync `repair` ran to refill and reconcile the index.
    sync: IndexSummary | None = None

    @property
    def healthy(self) -> bool:
        """No problem is left (warnings are reported, but the index works)."""
        return not any(c.status in ("problem", "skipped") for c in self.checks)


def run_doctor(
    start: Path | None = None,
    *,
    repair: bool = False,
    wait: WaitPolicy = WAIT_FOREVER,
    progress: ProgressFn | None = None,
) -> DoctorReport:
    """Check the project's index (and with `repair`, fix what can be fixed)."""
    paths = project_paths(start)
    if not paths.index_dir.is_dir():
        raise NoIndexError(
            f"There is no cidx index in {paths.root}, so there is nothing to check. Run "
            "`cidx index` to create one."
        )
    lock = OwnerLock(paths, "doctor")
    _acquire(lock, paths, wait)
    try:
        found = _inspect(paths)
        if not repair or all(c.status == "ok" for c in found.checks):
            return DoctorReport(str(paths.root), str(paths.index_dir), repair, found.checks)
        actions, summary = _repair(paths, found, progress)
        after = _inspect(paths)
        before = {c.name: c for c in found.checks}
        checks = [_compare(before[c.name], c) for c in after.checks]
        return DoctorReport(str(paths.root), str(paths.index_dir), repair, checks, actions, summary)
    finally:
        lock.release()


def _acquire(lock: OwnerLock, paths: ProjectPaths, wait: WaitPolicy) -> None:
    """Take the owner lock as `wait` allows; never wait for a long-lived owner."""
    deadline = None if wait.timeout is None else time.monotonic() + wait.timeout
    told = False
    while not lock.try_acquire():
        owner = read_owner(paths)
        who = owner.describe() if owner else "another cidx process"
        if owner is not None and owner.kind in LONG_LIVED:
            raise LockBusyError(
                f"`cidx doctor` needs the index of {paths.root} to itself, and {who} keeps it "
                "open. Stop that process, run `cidx doctor` again, then start it again."
            )
        if deadline is not None and time.monotonic() >= deadline:
            raise LockBusyError(
                f"The index of {paths.root} is in use by {who}. Run `cidx doctor` again when "
                "it has finished (or with a longer --wait-timeout)."
            )
        if not told and wait.on_wait is not None:
            wait.on_wait(owner)
            told = True
        time.sleep(0.1)


def _compare(before: Check, after: Check) -> Check:
    """The final word on a check: repaired when it was wrong and no longer is."""
    if before.status in ("problem", "warning", "skipped") and after.status == "ok":
        if before.status == "skipped":
            return after
        return Check(after.name, "repaired", f"{before.detail} → {after.detail}")
    return after


# -- inspection --------------------------------------------------------------


@dataclass
class _Findings:
    checks: list[Check]
    config: Config | None = None
    # What repairs need to know beyond the checks' text.
    store_damaged: bool = False
    drift: bool = False


def _inspect(paths: ProjectPaths) -> _Findings:
    checks: dict[str, Check] = {}
    found = _Findings([])
    config = _check_config(paths, checks)
    found.config = config
    db = _check_state(paths, checks)
    store: VectorStore | None = None
    try:
        if config is not None:
            store = _check_store(paths, config, checks)
        else:
            checks["store"] = Check("store", "skipped", "Not checked: the config is unreadable.")
        if config is not None and db is not None and store is not None:
            _check_consistency(config, db, store, checks)
        else:
            why = "needs a readable config, state database and store"
            for name in ("counts", "ids", "payloads", "vectors"):
                checks.setdefault(name, Check(name, "skipped", f"Not checked: {why}."))
    finally:
        if store is not None:
            store.close()
        if db is not None:
            db.close()
    if checks["store"].status == "problem" or any(
        checks[n].status == "problem" for n in ("payloads", "vectors")
    ):
        found.store_damaged = True
    if any(checks[n].status == "problem" for n in ("counts", "ids")):
        found.drift = True
    _check_leftovers(paths, config, checks)
    _check_owner(paths, checks)
    _check_permissions(paths, checks)
    _check_disk(paths, checks)
    found.checks = [checks[name] for name in CHECK_NAMES]
    return found


def _check_config(paths: ProjectPaths, checks: dict[str, Check]) -> Config | None:
    repair = "run `cidx doctor --repair` to recreate it around the existing index"
    try:
        config = load_config(paths)
    except ConfigError as exc:
        checks["config"] = Check("config", "problem", exc.message, repair)
        return None
    from cidx.embedding import MODEL_NAME

    if not config.embedding.model_id.startswith(MODEL_NAME + "@"):
        checks["config"] = Check(
            "config",
            "problem",
            f"The index was built with the model {config.embedding.model_id!r}, which this "
            "cidx does not bundle.",
            "run `cidx init --force` to rebuild the index with the bundled model",
        )
        return None
    checks["config"] = Check(
        "config", "ok", f"{paths.config_file} is valid (collection {config.collection})."
    )
    return config


def _check_state(paths: ProjectPaths, checks: dict[str, Check]) -> StateDB | None:
    repair = "run `cidx doctor --repair` to rebuild it from the store"
    if not paths.state_db.exists():
        checks["state"] = Check("state", "problem", f"{paths.state_db} is missing.", repair)
        return None
    try:
        db = StateDB(paths.state_db)
    except CidxError as exc:
        checks["state"] = Check("state", "problem", exc.message, repair)
        return None
    try:
        rows = [str(r[0]) for r in db.conn.execute("PRAGMA integrity_check(20)")]
        if rows != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(rows[:3]))
        files, chunks = db.counts()
        cached = db.cache_size()
    except (sqlite3.Error, CidxError) as exc:
        db.close()
        detail = exc.message if isinstance(exc, CidxError) else str(exc)
        checks["state"] = Check(
            "state", "problem", f"{paths.state_db} is damaged ({detail}).", repair
        )
        return None
    checks["state"] = Check(
        "state",
        "ok",
        f"{paths.state_db} passes SQLite's integrity check ({files:,} files, {chunks:,} "
        f"chunks, {cached:,} cached vectors).",
    )
    return db


def _check_store(paths: ProjectPaths, config: Config, checks: dict[str, Check]) -> VectorStore:
    store = open_store(paths, config)
    shard = paths.collection_dir(config.collection)
    repair = "run `cidx index` (or `cidx doctor --repair`) to rebuild it"
    if not store.collection_exists(config.collection):
        checks["store"] = Check("store", "problem", f"The index shard {shard} is missing.", repair)
        return store
    try:
        points = store.count(config.collection)
    except StoreDamagedError as exc:
        checks["store"] = Check(
            "store", "problem", f"The index shard {shard} cannot be opened ({exc.detail}).", repair
        )
        return store
    checks["store"] = Check("store", "ok", f"The index shard opens ({points:,} points).")
    return store


def _check_consistency(
    config: Config, db: StateDB, store: VectorStore, checks: dict[str, Check]
) -> None:
    if checks["store"].status != "ok":
        for name in ("counts", "ids", "payloads", "vectors"):
            checks[name] = Check(name, "skipped", "Not checked: the store cannot be read.")
        return
    from cidx.indexer import META_STORE_DAMAGED

    repair = "run `cidx index` (or `cidx doctor --repair`) to reconcile them"
    rebuild = "run `cidx index` (or `cidx doctor --repair`) to rebuild the store"
    collection = config.collection
    manifest = db.files()
    wanted = {pid: rec for rec in manifest.values() for pid in rec.chunk_ids}
    _, chunks = db.counts()
    points = store.count(collection)
    if points == chunks:
        checks["counts"] = Check(
            "counts", "ok", f"The store holds the {points:,} points the manifest lists."
        )
    else:
        checks["counts"] = Check(
            "counts",
            "problem",
            f"The store holds {points:,} points, the manifest lists {chunks:,} chunks.",
            repair,
        )

    seen: set[str] = set()
    incomplete: list[str] = []
    mismatched: list[str] = []
    sample: list[tuple[bytes, list[float]]] = []
    stride = max(1, math.ceil(points / VECTOR_SAMPLE))
    try:
        for n, record in enumerate(store.points(collection)):
            seen.add(record.id)
            payload = record.payload
            if any(key not in payload for key in PAYLOAD_FIELDS):
                incomplete.append(record.id)
                continue
            rec = wanted.get(record.id)
            if rec is not None and (
                payload["path"] != rec.path or payload.get("file_hash") != rec.hash
            ):
                mismatched.append(record.id)
            if n % stride == 0 and record.dense is not None:
                sample.append(
                    (text_hash(dense_text(str(payload["path"]), _chunk(payload))), record.dense)
                )
    except StoreDamagedError as exc:
        checks["ids"] = Check("ids", "skipped", "Not checked: the payloads cannot be read.")
        checks["payloads"] = Check(
            "payloads", "problem", f"Stored payloads cannot be read ({exc.detail}).", rebuild
        )
        checks["vectors"] = Check("vectors", "skipped", "Not checked: the payloads cannot be read.")
        return
    missing = len(wanted.keys() - seen)
    stray = len(seen - wanted.keys())
    if missing or stray:
        checks["ids"] = Check(
            "ids",
            "problem",
            f"{missing:,} points the manifest lists are not in the store; {stray:,} points in "
            "the store are not in the manifest.",
            repair,
        )
    else:
        checks["ids"] = Check("ids", "ok", "The store's point ids are the manifest's.")
    mark = db.get_meta(META_STORE_DAMAGED)
    if incomplete or mismatched:
        checks["payloads"] = Check(
            "payloads",
            "problem",
            f"{len(incomplete):,} stored payloads lack fields and {len(mismatched):,} disagree "
            "with the manifest (path or file hash).",
            rebuild,
        )
    elif mark is not None:
        checks["payloads"] = Check(
            "payloads",
            "problem",
            f"Every payload reads back, but a search found the store damaged ({mark}).",
            rebuild,
        )
    else:
        checks["payloads"] = Check(
            "payloads", "ok", f"All {len(seen):,} payloads read back and match the manifest."
        )
    checks["vectors"] = _compare_vectors(config, db, sample, rebuild)


def _chunk(payload: dict[str, object]) -> Chunk:
    from cidx.chunking import Chunk

    return Chunk(
        int(str(payload["start_line"])),
        int(str(payload["end_line"])),
        str(payload["kind"]),
        str(payload["symbol"]),
        str(payload["text"]),
    )


def _compare_vectors(
    config: Config, db: StateDB, sample: list[tuple[bytes, list[float]]], rebuild: str
) -> Check:
    import numpy as np

    cached = db.cached_vectors(config.embedding.model_id, sorted({h for h, _ in sample}))
    compared = bad = 0
    for h, dense in sample:
        ref = cached.get(h)
        if ref is None:
            continue
        compared += 1
        got = np.asarray(dense, dtype=np.float32)
        denom = float(np.linalg.norm(got) * np.linalg.norm(ref))
        # `not >=`: garbage bytes read as floats may be NaN, which compares false.
        if not denom or not float(got @ ref) / denom >= MIN_COSINE:
            bad += 1
    if bad:
        return Check(
            "vectors",
            "problem",
            f"{bad:,} of {compared:,} sampled vectors differ from the embedding cache.",
            rebuild,
        )
    if not compared:
        return Check("vectors", "ok", "No sampled vector is in the embedding cache to compare.")
    return Check("vectors", "ok", f"{compared:,} sampled vectors match the embedding cache.")


def _check_leftovers(paths: ProjectPaths, config: Config | None, checks: dict[str, Check]) -> None:
    if config is None:
        checks["leftovers"] = Check(
            "leftovers", "skipped", "Not checked: which collection is in use needs the config."
        )
        return
    found = leftovers(paths, config.collection)
    if not found:
        checks["leftovers"] = Check("leftovers", "ok", "Nothing unused in the index folder.")
        return
    size = sum(_size(p) for p in found)
    names = ", ".join(str(p.relative_to(paths.index_dir)) for p in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    checks["leftovers"] = Check(
        "leftovers",
        "warning",
        f"{len(found)} unused entries take {size_text(size)}: {names}{more}.",
        "run `cidx doctor --repair` to delete them",
    )


def _size(path: Path) -> int:
    from cidx.fsutil import disk_usage

    if path.is_dir() and not path.is_symlink():
        return disk_usage(path)
    try:
        return path.lstat().st_blocks * 512
    except OSError:
        return 0


def _check_owner(paths: ProjectPaths, checks: dict[str, Check]) -> None:
    # The doctor holds the lock: a socket now is one its owner left behind
    # when it was killed.
    stale = [p for p in (paths.socket_path,) if p.exists() or p.is_symlink()]
    if stale:
        checks["owner"] = Check(
            "owner",
            "warning",
            f"A killed owner left {stale[0].name} behind.",
            "run `cidx doctor --repair` to remove it",
        )
    else:
        checks["owner"] = Check("owner", "ok", "No owner runs, and none left files behind.")


def _check_permissions(paths: ProjectPaths, checks: dict[str, Check]) -> None:
    uid = os.getuid()
    foreign: list[Path] = []
    blocked: list[Path] = []
    for path in _walk(paths.index_dir):
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        if uid != 0 and st.st_uid != uid:
            foreign.append(path)
            continue
        need = stat.S_IRWXU if stat.S_ISDIR(st.st_mode) else stat.S_IRUSR | stat.S_IWUSR
        if st.st_mode & need != need:
            blocked.append(path)
    # A private folder hides everything in it, whatever the files' own modes.
    folder_mode = stat.S_IMODE(paths.index_dir.stat().st_mode)
    if foreign:
        checks["permissions"] = Check(
            "permissions",
            "problem",
            f"{len(foreign)} entries belong to another user (e.g. {foreign[0]}).",
            f"run `sudo chown -R {_user()} {paths.index_dir}`",
        )
    elif blocked:
        checks["permissions"] = Check(
            "permissions",
            "problem",
            f"{len(blocked)} entries are not readable and writable by you (e.g. {blocked[0]}).",
            "run `cidx doctor --repair` to fix their modes",
        )
    elif folder_mode & (stat.S_IRWXG | stat.S_IRWXO):
        checks["permissions"] = Check(
            "permissions",
            "warning",
            f"Other users can read {paths.index_dir} (mode {folder_mode:o}), which holds the "
            "text of your files.",
            "run `cidx doctor --repair` to make it private",
        )
    else:
        checks["permissions"] = Check(
            "permissions", "ok", f"{paths.index_dir} is private to you (mode {folder_mode:o})."
        )


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _walk(root: Path) -> list[Path]:
    out = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        out.extend(Path(dirpath, n) for n in dirnames)
        out.extend(Path(dirpath, n) for n in filenames)
    return out


def _check_disk(paths: ProjectPaths, checks: dict[str, Check]) -> None:
    free = free_bytes(paths.index_dir)
    if free < LOW_SPACE:
        checks["disk"] = Check(
            "disk",
            "warning",
            f"Only {size_text(free)} is free on the disk holding {paths.index_dir}; indexing "
            "stops with a clear error when it runs out.",
            "free some space on that disk",
        )
    else:
        checks["disk"] = Check("disk", "ok", f"{size_text(free)} free.")


# -- repair ------------------------------------------------------------------


def _repair(
    paths: ProjectPaths, found: _Findings, progress: ProgressFn | None
) -> tuple[list[str], IndexSummary | None]:
    from cidx.indexer import META_DIRTY, META_STORE_DAMAGED

    checks = {c.name: c for c in found.checks}
    actions: list[str] = []
    config = found.config
    summary: IndexSummary | None = None
    broken = any(checks[n].status in ("problem", "skipped") for n in _INDEX_CHECKS)
    try:
        if config is None:
            if "does not bundle" in checks["config"].detail:
                return actions, None  # only the person can choose to rebuild
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
            store = open_store(paths, config) if not store_damaged else None
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
            db = StateDB(paths.state_db)
            try:
                with db.transaction() as tx:
                    if store_damaged:
                        db.set_meta(META_STORE_DAMAGED, "found by `cidx doctor`", tx)
                    db.set_meta(META_DIRTY, str(time.time()), tx)
            finally:
                db.close()
        if broken:
            summary = _sync(paths, progress)
            actions.append("Synced the index: " + _summary_text(summary))
    except CidxError as exc:
        actions.append(f"Could not finish the repair: {exc.message}")
        return actions, summary
    actions.extend(_clean(paths, config, checks))
    return actions, summary


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
    for path in _walk(root):
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
