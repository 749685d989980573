"""The doctor's checks: each looks at one part of the index and says what it found."""

from __future__ import annotations

import math
import os
import sqlite3
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cidx.config import Config, load_config
from cidx.doctor._report import CHECK_NAMES, Check
from cidx.errors import CidxError, ConfigError, StoreDamagedError
from cidx.formatting import size as size_text
from cidx.fsutil import disk_usage, free_bytes
from cidx.project import ProjectPaths
from cidx.recovery import leftovers
from cidx.registry import Registry, alias_drift
from cidx.representation import dense_text, text_hash
from cidx.state import StateDB
from cidx.storage import open_store, storage_location
from cidx.store import VectorStore

if TYPE_CHECKING:
    from cidx.chunking import Chunk

# Vectors compared with the embedding cache (a full comparison reads the
# whole cache; a sample finds a shard whose vector file was overwritten).
VECTOR_SAMPLE = 256
MIN_COSINE = 0.999
# Less free space than this on the index's disk is worth a warning.
LOW_SPACE = 64 * 1024 * 1024
# An alias nothing went through for this long is reported as stale.
STALE_ALIAS_DAYS = 30
# Payload fields every point has (cidx.representation.payload).
PAYLOAD_FIELDS = ("path", "language", "kind", "symbol", "start_line", "end_line", "text")


@dataclass
class Findings:
    """The checks, and what the repairs need to know beyond their text."""

    checks: list[Check]
    config: Config | None = None
    store_damaged: bool = False
    drift: bool = False


def inspect(paths: ProjectPaths) -> Findings:
    """Every check, in `CHECK_NAMES` order (the caller holds the owner lock)."""
    checks: dict[str, Check] = {}
    found = Findings([])
    config = _check_config(paths, checks)
    found.config = config
    db = _check_state(paths, config, checks)
    store: VectorStore | None = None
    try:
        if config is not None:
            store = _check_store(paths, config, checks)
        else:
            checks["store"] = Check("store", "skipped", "Not checked: the config is unreadable.")
        if config is not None and db is not None and store is not None:
            _check_consistency(config, db, store, checks)
            _check_aliases(db, store, checks)
            _check_alias_registry(paths, config, db, checks)
        else:
            why = "needs a readable config, state database and store"
            for name in ("counts", "ids", "payloads", "vectors", "aliases", "alias-registry"):
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
    from cidx.embedding import model_id

    wanted = model_id(config.embedding.max_length)
    if config.embedding.model_id != wanted:
        checks["config"] = Check(
            "config",
            "warning",
            f"The index was built with the embedding model {config.embedding.model_id}; "
            f"the next sync rebuilds it with the bundled model {wanted}.",
            "run `cidx index` to rebuild it now",
        )
        return config
    checks["config"] = Check(
        "config", "ok", f"{paths.config_file} is valid (collection {config.collection})."
    )
    return config


def _check_state(
    paths: ProjectPaths, config: Config | None, checks: dict[str, Check]
) -> StateDB | None:
    repair = "run `cidx doctor --repair` to rebuild it from the store"
    if not paths.state_db.exists():
        checks["state"] = Check("state", "problem", f"{paths.state_db} is missing.", repair)
        return None
    try:
        db = StateDB(paths.state_db, collection=config.collection if config else None)
    except CidxError as exc:
        checks["state"] = Check("state", "problem", exc.message, repair)
        return None
    try:
        rows = [str(r[0]) for r in db.conn.execute("PRAGMA integrity_check(20)")]
        if rows != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(rows[:3]))
        files, chunks = (0, 0) if config is None else db.manifest(config.collection).counts()
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
    location = storage_location(paths, config)
    store = open_store(location)
    shard = location.where(config.collection)
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
    manifest = db.manifest(collection).files()
    wanted = {pid: rec for rec in manifest.values() for pid in rec.chunk_ids}
    _, chunks = db.manifest(collection).counts()
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
    mark = db.manifest(collection).get_mark(META_STORE_DAMAGED)
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


def _check_aliases(db: StateDB, store: VectorStore, checks: dict[str, Check]) -> None:
    """Aliases whose collection is gone (a problem), and aliases unused for
    `STALE_ALIAS_DAYS` (reported; never removed without asking)."""
    aliases = db.aliases.all()
    dangling = [a for a in aliases.values() if not store.collection_exists(a.target)]
    if dangling:
        names = ", ".join(f"{a.name} → {a.target}" for a in dangling[:5])
        checks["aliases"] = Check(
            "aliases",
            "problem",
            f"{len(dangling):,} aliases reach a collection that no longer exists: {names}.",
            f"run `cidx project remove-alias {dangling[0].name}` for each",
        )
        return
    now = time.time()
    stale = [
        a
        for a in aliases.values()
        if now - (a.last_used_at or a.created_at) > STALE_ALIAS_DAYS * 86400
    ]
    if stale:
        names = ", ".join(a.name for a in stale[:5])
        checks["aliases"] = Check(
            "aliases",
            "warning",
            f"{len(stale):,} aliases have not been used for {STALE_ALIAS_DAYS} days: {names}. "
            "Nothing reaches the index through them any more, it seems.",
            f"`cidx project remove-alias {stale[0].name}` removes one, if nothing needs it",
        )
        return
    checks["aliases"] = Check(
        "aliases",
        "ok",
        f"{len(aliases):,} aliases, each reaching a collection." if aliases else "No aliases.",
    )


def _check_alias_registry(
    paths: ProjectPaths, config: Config, db: StateDB, checks: dict[str, Check]
) -> None:
    """In global mode, the project's aliases are in its state database and in
    the global store's registry: each in one place only is drift."""
    if config.storage_mode != "global":
        checks["alias-registry"] = Check(
            "alias-registry", "ok", "Not in the global store: no registry to agree with."
        )
        return
    with Registry() as registry:
        drift = alias_drift(registry, paths.root, db.aliases.all().values())
    if drift.names:
        parts = [
            f"{what}: {', '.join(a.name for a in found[:5])}"
            for what, found in (
                ("in the state database only", drift.state_only),
                ("in the registry only", drift.registry_only),
            )
            if found
        ]
        if drift.differ:
            parts.append(f"reaching different collections: {', '.join(drift.differ[:5])}")
        checks["alias-registry"] = Check(
            "alias-registry",
            "problem",
            f"{len(drift.names):,} aliases are recorded in one place only ({'; '.join(parts)}).",
            "run `cidx doctor --repair` (it records each in both places and removes none)",
        )
        return
    checks["alias-registry"] = Check(
        "alias-registry", "ok", "The registry of the global store has the same aliases."
    )


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
    for path in walk(paths.index_dir):
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


def walk(root: Path) -> list[Path]:
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
