"""`cidx backup`: a project's index as one archive, and the archives kept.

A backup reaches the index the way every command does (`cidx.service`):
through the process that owns it, or as its owner. That process takes a
snapshot (`cidx.snapshots.take_snapshot`: writes held, store flushed, files
cloned, writes resumed — a running `cidx watch` keeps answering queries
throughout), and the archive (`cidx.archive`) is then written from the
snapshot with nothing held. It is written under a temporary name in its
folder, synced, and only then given its final name, so a backup killed at
any moment leaves no file under that name; `--keep N` then removes the
oldest backups of the same project in that folder beyond N.

A project in global storage mode is backed up the same way: the snapshot
copies its collection out of the global store, and the manifest records its
registry entry (`registered`). The global store as a whole, every project's
collection and the registry, is `cidx.global_backup`'s.

Backups go to `<data dir>/backups/` (`cidx.userdirs`) unless told otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cidx import __version__, userdirs
from cidx.archive import (
    CONFIG_MEMBER,
    STATE_MEMBER,
    SUFFIX,
    ArchivedCollection,
    ArchivedFile,
    ArchiveManifest,
    ArchiveWriter,
    RegisteredCollection,
    SampleQuery,
    collection_member,
    read_archive,
    read_manifest,
)
from cidx.compatibility import check_compatible
from cidx.errors import ArchiveError, CidxError, DiskFullError, UsageError
from cidx.failpoints import failpoint
from cidx.formatting import size as size_text
from cidx.fsutil import free_bytes, fsync_folder, is_no_space, private_dir
from cidx.messages import IndexSnapshot, SnapshotRequest
from cidx.owner.lock import pid_alive
from cidx.project import project_paths
from cidx.service import WAIT_FOREVER, WaitPolicy, with_index
from cidx.snapshots import SCRATCH
from cidx.treecopy import remove_tree

__all__ = [
    "BackupInfo",
    "BackupListing",
    "BackupResult",
    "CollectionCount",
    "Member",
    "VerifyResult",
    "add_collection",
    "backup_project",
    "backup_result",
    "check_keep",
    "default_folder",
    "destination",
    "list_backups",
    "regular_files",
    "remove_stale",
    "verify_backup",
    "write_archive",
]

_BLOCK = 1 << 20
# A backup being written: ".<final name>.<pid>.tmp" (the shape of every
# temporary file cidx writes), in the folder of the final name.
_PARTIAL = re.compile(r"^\.(.+" + re.escape(SUFFIX) + r")\.([0-9]+)\.tmp$")


@dataclass(frozen=True)
class CollectionCount:
    name: str
    points: int


@dataclass(frozen=True)
class BackupResult:
    archive: str
    root: str
    bytes: int  # the archive's size
    data_bytes: int  # the files it holds, uncompressed
    files: int
    collections: list[CollectionCount]
    points: int
    seconds: float
    # How long the index's writes were held while it was copied.
    paused_seconds: float
    copy_method: str
    pruned: list[str] = field(default_factory=list)
    # Damage the index had when backed up, each with its repair.
    problems: list[str] = field(default_factory=list)
    # "project", or "global" for the global store (`root` is then the data folder).
    kind: str = "project"


@dataclass(frozen=True)
class BackupInfo:
    """One archive in a folder, as its manifest describes it."""

    path: str
    bytes: int
    created_at: str | None = None
    kind: str | None = None
    project_root: str | None = None
    project_id: str | None = None
    model_id: str | None = None
    cidx_version: str | None = None
    format_version: int | None = None
    collections: list[CollectionCount] = field(default_factory=list)
    points: int = 0
    # Why the manifest could not be read (the file is damaged or not a backup).
    problem: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    """An archive read to its end: every member present, at its size, with its sha256."""

    info: BackupInfo
    files: int
    data_bytes: int
    seconds: float


@dataclass(frozen=True)
class BackupListing:
    folder: str
    backups: list[BackupInfo]


def default_folder() -> Path:
    """Where backups go unless `--output` says otherwise."""
    return userdirs.data_dir() / "backups"


def backup_project(
    start: Path | None = None,
    *,
    output: Path | None = None,
    keep: int | None = None,
    wait: WaitPolicy = WAIT_FOREVER,
) -> BackupResult:
    """Back up the project's index into one archive (see the module docstring)."""
    check_keep(keep)
    started = time.perf_counter()
    paths = project_paths(start)
    folder, final = destination(output, paths.root.name)
    remove_stale(paths.index_dir, folder)
    scratch = paths.index_dir / f".backup.{os.getpid()}.tmp"
    try:
        snapshot = with_index(
            lambda handle: handle.snapshot(SnapshotRequest(str(scratch))),
            start,
            kind="backup",
            wait=wait,
        )
        manifest, members = _manifest(snapshot, scratch)
        written = write_archive(manifest, members, folder, final)
    finally:
        remove_tree(scratch)
    return backup_result(
        written,
        manifest,
        keep=keep,
        root=snapshot.project_root,
        started=started,
        paused=snapshot.paused_seconds,
        method=snapshot.copy_method,
    )


def check_keep(keep: int | None) -> None:
    if keep is not None and keep < 1:
        raise UsageError(f"--keep must be 1 or more, not {keep}.")


def backup_result(
    written: Path,
    manifest: ArchiveManifest,
    *,
    keep: int | None,
    root: str,
    started: float,
    paused: float,
    method: str,
) -> BackupResult:
    """What a backup that wrote `written` (holding `manifest`) reports, once
    the oldest backups of the same beyond `keep` in its folder are removed."""
    pruned = prune(written.parent, keep, manifest) if keep is not None else []
    return BackupResult(
        archive=str(written),
        root=root,
        bytes=written.stat().st_size,
        data_bytes=manifest.data_bytes,
        files=len(manifest.files),
        collections=[CollectionCount(c.name, c.points) for c in manifest.collections],
        points=manifest.points,
        seconds=time.perf_counter() - started,
        paused_seconds=paused,
        copy_method=method,
        pruned=[str(p) for p in pruned],
        problems=list(manifest.problems),
        kind=manifest.kind,
    )


def destination(output: Path | None, name: str) -> tuple[Path, Path]:
    """(folder, final path) of the archive to write, named after `name` unless
    `output` names it."""
    # A name ending in .tar.zst is the archive's; anything else is a folder
    # (created if missing) where the backup gets a name of its own.
    if output is not None and output.name.endswith(SUFFIX) and not output.is_dir():
        output = output.absolute()
        if output.exists() or output.is_symlink():
            raise UsageError(
                f"{output} exists already. Give another name, or a folder (backups in a folder "
                "get a name of their own)."
            )
        if not output.parent.is_dir():
            raise UsageError(f"The folder {output.parent} does not exist. Create it first.")
        return output.parent, output
    folder = (output or default_folder()).absolute()
    try:
        private_dir(folder)
    except OSError as exc:
        raise UsageError(f"Cannot create the backup folder {folder}: {exc.strerror}.") from None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "project"
    base = f"{slug}-{stamp}"
    final = folder / f"{base}{SUFFIX}"
    n = 1
    while final.exists() or final.is_symlink():
        n += 1
        final = folder / f"{base}-{n}{SUFFIX}"
    return folder, final


def remove_stale(index_dir: Path, folder: Path) -> None:
    """Delete what killed backups left: snapshots in `index_dir` (the index
    folder, or the data folder for the global store) and partial archives in
    the backup folder, whose process is gone."""
    for where, pattern, group in ((index_dir, SCRATCH, 1), (folder, _PARTIAL, 2)):
        with contextlib.suppress(OSError):
            for entry in where.iterdir():
                match = pattern.match(entry.name)
                if match is not None and not pid_alive(int(match.group(group))):
                    if entry.is_dir() and not entry.is_symlink():
                        remove_tree(entry)
                    else:
                        entry.unlink()


@dataclass(frozen=True)
class Member:
    """A file to archive: its member name, where it is, its size."""

    name: str
    path: Path
    size: int

    @classmethod
    def of(cls, name: str, path: Path) -> Member:
        return cls(name, path, os.lstat(path).st_size)


def _manifest(snapshot: IndexSnapshot, scratch: Path) -> tuple[ArchiveManifest, list[Member]]:
    """The archive's manifest, and its members in the order they are written."""
    members = [
        Member.of(CONFIG_MEMBER, scratch / "index" / "config.json"),
        Member.of(STATE_MEMBER, scratch / "index" / "state.db"),
    ]
    disk = sum(os.lstat(m.path).st_blocks * 512 for m in members)
    collections: list[ArchivedCollection] = []
    for c in snapshot.collections:
        disk += add_collection(members, c.name, scratch / "collections" / c.name)
        sample = SampleQuery.of(c.sample_vector, c.sample_hits) if c.sample_vector else None
        collections.append(
            ArchivedCollection(name=c.name, points=c.points, format=c.format, sample=sample)
        )
    manifest = ArchiveManifest(
        cidx_version=__version__,
        # Milliseconds: backups taken within one second still sort in order.
        created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        kind="project",
        project_root=snapshot.project_root,
        project_id=snapshot.project_id,
        storage_mode=snapshot.storage_mode,
        model_id=snapshot.model_id,
        dim=snapshot.dim,
        config_schema=snapshot.config_schema,
        state_schema=snapshot.state_schema,
        collections=collections,
        files=[ArchivedFile(path=m.name, size=m.size) for m in members],
        disk_bytes=disk,
        problems=list(snapshot.problems),
        registered=[
            RegisteredCollection(
                name=c.name,
                project_root=snapshot.project_root,
                project_id=snapshot.project_id,
                model=snapshot.model_id,
            )
            for c in collections
            if snapshot.storage_mode == "global"
        ],
    )
    return manifest, members


def add_collection(members: list[Member], name: str, base: Path) -> int:
    """Append the files of the collection `name` (copied to `base`) to
    `members`; the bytes they take on disk."""
    disk = 0
    for path in sorted(regular_files(base)):
        members.append(Member.of(collection_member(name, path.relative_to(base).as_posix()), path))
        disk += os.lstat(path).st_blocks * 512
    return disk


def regular_files(folder: Path) -> list[Path]:
    """Every regular file under `folder`. A store's folder holds nothing else;
    anything else would not come back as it was, so it stops the backup."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise CidxError(
                    f"{path} is not a regular file, and a backup holds only those. Run "
                    "`cidx doctor` to check the index."
                )
            found.append(path)
    return found


def write_archive(
    manifest: ArchiveManifest, members: list[Member], folder: Path, final: Path
) -> Path:
    """Write the archive under a temporary name, sync it, give it its final
    name (never replacing a file already there); the path it got."""
    partial = folder / f".{final.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with open(fd, "wb", buffering=_BLOCK) as out:
            writer = ArchiveWriter(out)
            writer.add_manifest(manifest)
            for member in members:
                writer.add_file(member.name, member.path, member.size)
                failpoint("backup.archive")
            writer.finish()
            out.flush()
            os.fsync(out.fileno())
        _publish(partial, final)
        fsync_folder(folder)
        return final
    except OSError as exc:
        if is_no_space(exc):
            raise _no_room(folder) from None
        raise
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()


def _publish(partial: Path, final: Path) -> None:
    """Give `partial` the name `final`, failing if that name is taken meanwhile."""
    try:
        os.link(partial, final)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise UsageError(
                f"{final} appeared while the backup was written. Run `cidx backup` again."
            ) from None
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # A filesystem without hard links: a rename, which is as atomic.
        os.rename(partial, final)


def _no_room(folder: Path) -> DiskFullError:
    try:
        free = size_text(free_bytes(folder))
    except OSError:
        free = "no space"
    return DiskFullError(
        f"The disk holding {folder} is full ({free} free): the backup was not written, and "
        "nothing was left behind. Free some space there, or write the backup elsewhere with "
        "--output FOLDER."
    )


def prune(folder: Path, keep: int, manifest: ArchiveManifest) -> list[Path]:
    """Delete the oldest backups in `folder` of the same project (or, for a
    global backup, the oldest global ones) beyond the `keep` newest."""
    mine: list[tuple[str, str, Path]] = []
    for info in list_backups(folder).backups:
        if info.problem is not None or info.kind != manifest.kind:
            continue
        if manifest.kind == "project" and info.project_id != manifest.project_id:
            continue
        mine.append((info.created_at or "", Path(info.path).name, Path(info.path)))
    mine.sort(reverse=True)
    gone = [path for _, _, path in mine[keep:]]
    for path in gone:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return gone


def list_backups(folder: Path | None = None) -> BackupListing:
    """Every archive in `folder` (default: the default backup folder), newest
    first, each described by its manifest (read from its first member only)."""
    where = (folder or default_folder()).absolute()
    if folder is not None and not where.is_dir():
        raise UsageError(f"There is no folder {where}. Give a folder that holds backups.")
    found: list[BackupInfo] = []
    with contextlib.suppress(FileNotFoundError):
        for path in where.iterdir():
            if path.name.endswith(SUFFIX) and not path.name.startswith(".") and path.is_file():
                found.append(describe(path))
    found.sort(key=lambda b: (b.created_at or "", b.path), reverse=True)
    return BackupListing(str(where), found)


def describe(path: Path) -> BackupInfo:
    """What the archive at `path` holds, from its manifest."""
    size = path.stat().st_size
    try:
        manifest = read_manifest(path)
    except ArchiveError as exc:
        return BackupInfo(str(path), size, problem=exc.message)
    return _info(path, size, manifest)


def _info(path: Path, size: int, manifest: ArchiveManifest) -> BackupInfo:
    return BackupInfo(
        path=str(path),
        bytes=size,
        created_at=manifest.created_at,
        kind=manifest.kind,
        project_root=manifest.project_root,
        project_id=manifest.project_id,
        model_id=manifest.model_id,
        cidx_version=manifest.cidx_version,
        format_version=manifest.format_version,
        collections=[CollectionCount(c.name, c.points) for c in manifest.collections],
        points=manifest.points,
    )


def verify_backup(archive: Path) -> VerifyResult:
    """Read all of `archive` as a restore would, writing nothing: ArchiveError
    if this cidx could not restore it, or if any member is missing, unsafe, of
    the wrong size or checksum."""
    started = time.perf_counter()
    archive = archive.absolute()
    manifest = read_archive(archive, accept=lambda found: check_compatible(found, archive))
    return VerifyResult(
        info=_info(archive, archive.stat().st_size, manifest),
        files=len(manifest.files),
        data_bytes=manifest.data_bytes,
        seconds=time.perf_counter() - started,
    )
