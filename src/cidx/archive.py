"""The backup archive: one zstd-compressed tar stream with a manifest and a
checksum per file, written and read in a single pass.

    manifest.json            first: what the archive holds — format version,
                             cidx version, model id and dimension, every
                             collection with its point count and a sample
                             query, every file with its size
    index/config.json        the project's config
    index/state.db           the state database (a copy made by SQLite's backup API)
    collections/<name>/...   each collection's files, in its store's format
    SHA256SUMS               last: the sha256 of every member above, in the
                             format `sha256sum -c` reads

The checksums come last because they are computed while the files stream
through: nothing is buffered and every file is read once. Everything a
reader must know before it accepts data is in the manifest ahead of it, so
a restore refuses an archive of a newer format or another model before it
extracts a byte, and refuses any member the manifest does not list.

Reading trusts nothing: only regular files, only at listed paths (relative,
no `..`, no links, no devices), each once and exactly at its listed size;
the stream is cut off past the size the manifest announces, so a hostile
header cannot make a reader buffer gigabytes; zstd's frame checksum and
every file's sha256 must match. Extracted files are written sparse: the
store preallocates its files, and their blocks of zeros become holes again.

It stays a standard tar.zst: `tar --zstd -xf` unpacks it and
`sha256sum -c SHA256SUMS` checks the result. The manifest's format changes
only through a numbered step in `MIGRATIONS` (tested against a stored
archive of each older version).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import zstandard
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cidx.errors import ArchiveError

__all__ = [
    "CHECKSUMS",
    "CONFIG_MEMBER",
    "FORMAT_VERSION",
    "MANIFEST",
    "STATE_MEMBER",
    "SUFFIX",
    "ArchiveManifest",
    "ArchiveWriter",
    "ArchivedCollection",
    "ArchivedFile",
    "SampleQuery",
    "collection_member",
    "read_archive",
    "read_manifest",
]

FORMAT: Literal["cidx-backup"] = "cidx-backup"
FORMAT_VERSION = 1
SUFFIX = ".tar.zst"
MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
CONFIG_MEMBER = "index/config.json"
STATE_MEMBER = "index/state.db"
COLLECTIONS = "collections"
_INDEX_MEMBERS = frozenset({CONFIG_MEMBER, STATE_MEMBER})
# The names cidx gives collections (`cidx.config.collection_name`).
COLLECTION_NAME = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"

# zstd level 3 (its default) with two worker threads: measured on a 100k-chunk
# index it compresses as well as level 9 to within 2 %, at several times the
# speed (benchmarks/RESULTS.md, "Backup and restore").
LEVEL = 3
THREADS = 2
_BLOCK = 1 << 20
# Extracted data is checked for zeros in pieces of this size; an all-zero
# piece is skipped (a hole), as the store's own sparse files had it.
_HOLE = 64 * 1024
_ZEROS = bytes(_HOLE)
_TAR_BLOCK = 512

# Bounds on what a reader accepts, whatever an archive says.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_FILES = 100_000
MAX_FILE_BYTES = 1 << 40
MAX_PATH = 1024
# Bytes a member may take beyond its data (headers, long-name records), and
# the slack at the end of the stream (end-of-archive blocks, padding).
_MEMBER_OVERHEAD = 8 * 1024
_STREAM_SLACK = 2 * _BLOCK

# Step N turns a version-N manifest into a version-(N+1) one (applied in
# memory when an archive is read; archives are never rewritten).
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


# -- the manifest ------------------------------------------------------------


class ArchivedFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    size: int = Field(ge=0, le=MAX_FILE_BYTES)


class SampleQuery(BaseModel):
    """A dense query and the hits it gave when the backup was taken: a restore
    asks the restored store the same question and expects the same answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vector: str  # little-endian float32, base64
    hits: list[tuple[str, float]]

    @classmethod
    def of(cls, vector: list[float], hits: list[tuple[str, float]]) -> SampleQuery:
        import numpy as np

        raw = np.asarray(vector, dtype="<f4").tobytes()
        return cls(vector=base64.b64encode(raw).decode("ascii"), hits=hits)

    def dense(self) -> list[float]:
        import numpy as np

        raw = base64.b64decode(self.vector, validate=True)
        return [float(x) for x in np.frombuffer(raw, dtype="<f4")]


class ArchivedCollection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=COLLECTION_NAME, max_length=255)
    points: int = Field(ge=0)
    # How its files are laid out: "edge-shard" (a Qdrant Edge shard folder).
    format: str
    sample: SampleQuery | None = None


class ArchiveManifest(BaseModel):
    """What one archive holds; the first member of every archive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["cidx-backup"] = FORMAT
    format_version: int = FORMAT_VERSION
    cidx_version: str
    created_at: str
    kind: Literal["project", "global"]
    # Where the project was (a global backup has none).
    project_root: str | None = None
    project_id: str | None = None
    storage_mode: str
    model_id: str
    dim: int = Field(gt=0)
    config_schema: int
    state_schema: int
    collections: list[ArchivedCollection]
    files: list[ArchivedFile]
    # What the files take on disk (they are sparse): the room a restore needs.
    disk_bytes: int = Field(ge=0)
    # Damage the index had when it was backed up (each names its repair).
    problems: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _safe_paths(self) -> ArchiveManifest:
        if len(self.files) > MAX_FILES:
            raise ValueError(f"lists {len(self.files):,} files, more than {MAX_FILES:,}")
        names = {c.name for c in self.collections}
        if len(names) != len(self.collections):
            raise ValueError("lists a collection twice")
        seen: set[str] = set()
        for f in self.files:
            problem = member_problem(f.path, names)
            if problem is not None:
                raise ValueError(f"the file {f.path!r} {problem}")
            if f.path in seen:
                raise ValueError(f"lists the file {f.path!r} twice")
            seen.add(f.path)
        return self

    @property
    def points(self) -> int:
        return sum(c.points for c in self.collections)

    @property
    def data_bytes(self) -> int:
        return sum(f.size for f in self.files)


def member_problem(path: str, collections: set[str]) -> str | None:
    """Why `path` may not be a data member of an archive (None: it may).

    A member is `index/config.json`, `index/state.db`, or a file under
    `collections/<a listed collection>/`; always relative, without empty,
    `.` or `..` parts or control characters, so that no member can land
    outside the folder it is extracted into.
    """
    if not path or len(path) > MAX_PATH:
        return "has no name or too long a name"
    if path.startswith("/") or "\\" in path:
        return "is an absolute path or uses backslashes"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "has control characters in its name"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, `.` or `..` part"
    if path in _INDEX_MEMBERS:
        return None
    if parts[0] == COLLECTIONS and len(parts) >= 3 and parts[1] in collections:
        return None
    return "is outside what a cidx backup holds (index/config.json, index/state.db, collections/)"


def collection_member(collection: str, rel: str) -> str:
    """The member name of `rel` (a POSIX path inside the collection's files)."""
    return f"{COLLECTIONS}/{collection}/{rel}"


def parse_manifest(data: bytes, archive: Path) -> ArchiveManifest:
    """The manifest in `data`, brought forward to this format version."""
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _not_backup(archive, f"its manifest is not JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _not_backup(archive, "its manifest does not describe a cidx backup")
    version = raw.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise _not_backup(archive, "its manifest has no valid format version")
    if version > FORMAT_VERSION:
        made_by = raw.get("cidx_version")
        by = f" by cidx {made_by}" if isinstance(made_by, str) else ""
        raise ArchiveError(
            f"The backup {archive} was written{by} in backup format {version}, newer than "
            f"this cidx reads (up to {FORMAT_VERSION}). Upgrade cidx to restore it."
        )
    while version < FORMAT_VERSION:
        raw = MIGRATIONS[version](dict(raw))
        version += 1
        raw["format_version"] = version
    try:
        return ArchiveManifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise _not_backup(archive, f"its manifest is not valid ({problems})") from None


def _not_backup(archive: Path, why: str) -> ArchiveError:
    return ArchiveError(
        f"{archive} is not a cidx backup, or a damaged one: {why}. Restore another archive "
        "(`cidx backup list` shows them), or take a new backup with `cidx backup`."
    )


def _damaged(archive: Path, why: str) -> ArchiveError:
    return ArchiveError(
        f"The backup {archive} is damaged: {why}. Nothing was restored from it. Use another "
        "backup (`cidx backup list` shows them), or take a new one with `cidx backup`."
    )


# -- writing -----------------------------------------------------------------


class ArchiveWriter:
    """Writes one archive into an open binary file, streaming.

    Call `add_manifest` first, then `add_file` for every file the manifest
    lists, then `finish`. Each file is read once: hashed and compressed on
    the way through.
    """

    def __init__(self, out: IO[bytes], *, level: int = LEVEL, threads: int = THREADS) -> None:
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=threads)
        self._out = compressor.stream_writer(out, closefd=False)
        self._sums: list[tuple[str, str]] = []
        self._buffer = bytearray(_BLOCK)
        self.bytes_in = 0  # uncompressed bytes of file data written

    def add_manifest(self, manifest: ArchiveManifest) -> None:
        data = (manifest.model_dump_json(indent=2) + "\n").encode("utf-8")
        self._add_bytes(MANIFEST, data)

    def _add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, len(data), time.time())
        self._out.write(data)
        self._pad(len(data))
        self._sums.append((hashlib.sha256(data).hexdigest(), name))

    def add_file(self, name: str, path: Path, size: int) -> None:
        """Add the file at `path` as `name`; it must still be `size` bytes long."""
        with open(path, "rb", buffering=0) as fh:
            self._header(name, size, os.fstat(fh.fileno()).st_mtime)
            digest = hashlib.sha256()
            view = memoryview(self._buffer)
            left = size
            while left:
                n = fh.readinto(view[: min(left, _BLOCK)])
                if not n:
                    raise ArchiveError(
                        f"{path} became shorter while it was archived. Run `cidx backup` again."
                    )
                digest.update(view[:n])
                self._out.write(view[:n])
                left -= n
        self._pad(size)
        self.bytes_in += size
        self._sums.append((digest.hexdigest(), name))

    def finish(self) -> None:
        sums = "".join(f"{digest}  {name}\n" for digest, name in self._sums).encode("utf-8")
        self._header(CHECKSUMS, len(sums), time.time())
        self._out.write(sums)
        self._pad(len(sums))
        # The end-of-archive marker: two zero blocks.
        self._out.write(bytes(2 * _TAR_BLOCK))
        self._out.flush(zstandard.FLUSH_FRAME)

    def _header(self, name: str, size: int, mtime: float) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = int(mtime)
        info.mode = 0o600
        info.type = tarfile.REGTYPE
        self._out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self, size: int) -> None:
        rest = size % _TAR_BLOCK
        if rest:
            self._out.write(bytes(_TAR_BLOCK - rest))


# -- reading -----------------------------------------------------------------


class _TarStream:
    """A strict reader of the tar stream inside an archive.

    It follows exactly what `ArchiveWriter` writes — a ustar header per
    member, optionally preceded by one pax extended header — and reads
    member data straight into the caller's buffer (no copies through
    `tarfile`'s stream layer). Any other header type is returned as it is,
    for `_check_member` to refuse by name; a global pax header, a GNU long
    name or a sparse map is refused here. It counts what it reads and stops
    at `limit`, so no header can make it read more than the manifest
    announced.
    """

    def __init__(self, reader: Any, archive: Path, limit: int) -> None:
        self._reader = reader
        self.archive = archive
        self.limit = limit
        self.count = 0
        self._header = bytearray(_TAR_BLOCK)

    def readinto(self, view: memoryview) -> int:
        """Fill `view` from the stream; how many bytes (fewer only at its end)."""
        if self.count + len(view) > self.limit:
            raise ArchiveError(
                f"The backup {self.archive} holds more data than its manifest announces "
                f"({self.limit:,} bytes): it is damaged or not what it claims to be. Nothing "
                "was restored from it. Use another backup (`cidx backup list` shows them)."
            )
        done = 0
        while done < len(view):
            n = self._reader.readinto(view[done:])
            if not n:
                break
            done += n
        self.count += done
        return done

    def exact(self, size: int, what: str) -> bytes:
        data = bytearray(size)
        if self.readinto(memoryview(data)) != size:
            raise _damaged(self.archive, f"it ends inside {what} (it was cut short)")
        return bytes(data)

    def skip_padding(self, size: int) -> None:
        rest = size % _TAR_BLOCK
        if rest:
            self.exact(_TAR_BLOCK - rest, "the padding of a member")

    def next(self) -> tarfile.TarInfo | None:
        """The next member's header (its data follows), or None at the end."""
        pax: dict[str, str] = {}
        while True:
            view = memoryview(self._header)
            n = self.readinto(view)
            if n == 0 or (n == _TAR_BLOCK and not any(self._header)):
                # The end: the stream ends, or the end-of-archive zero blocks.
                return None
            if n != _TAR_BLOCK:
                raise _damaged(self.archive, "it ends inside a member header (it was cut short)")
            try:
                info = tarfile.TarInfo.frombuf(bytes(self._header), "utf-8", "surrogateescape")
            except tarfile.HeaderError as exc:
                raise _damaged(self.archive, f"its tar stream is broken ({exc})") from None
            if info.type == tarfile.XHDTYPE and not pax:
                if info.size > _MEMBER_OVERHEAD:
                    raise _damaged(self.archive, "it has an oversized pax header")
                pax = _parse_pax(self.exact(info.size, "a pax header"), self.archive)
                self.skip_padding(info.size)
                continue
            if info.type in (tarfile.XGLTYPE, tarfile.XHDTYPE, *tarfile.GNU_TYPES):
                raise ArchiveError(
                    f"The backup {self.archive} holds a tar header of type {info.type!r} (a "
                    "global or repeated pax header, a GNU long name or sparse map), which cidx "
                    "never writes: it was not written by cidx or was tampered with. Nothing was "
                    "restored from it. Use another backup (`cidx backup list` shows them)."
                )
            if any(key.startswith("GNU.sparse") for key in pax):
                raise ArchiveError(
                    f"The backup {self.archive} holds a sparse member, which cidx never writes: "
                    "it was not written by cidx or was tampered with. Nothing was restored from "
                    "it. Use another backup (`cidx backup list` shows them)."
                )
            if "path" in pax:
                info.name = pax["path"]
            if "linkpath" in pax:
                info.linkname = pax["linkpath"]
            if "size" in pax:
                if not pax["size"].isdigit():
                    raise _damaged(self.archive, "a pax header gives a size that is no number")
                info.size = int(pax["size"])
            return info


def _parse_pax(data: bytes, archive: Path) -> dict[str, str]:
    """The records of a pax extended header: `<length> <key>=<value>\n` each."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + 20)
        length = data[pos:space]
        if space < 0 or not length.isdigit():
            raise _damaged(archive, "it has a pax header that cannot be read")
        end = pos + int(length)
        record = data[space + 1 : end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise _damaged(archive, "it has a pax header that cannot be read")
        key, _, value = record[:-1].partition(b"=")
        try:
            records[key.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _damaged(archive, "it has a pax header that is not UTF-8") from None
        pos = end
    return records


PlaceFn = Callable[[str], Path | None]
AcceptFn = Callable[[ArchiveManifest], None]


def read_manifest(archive: Path) -> ArchiveManifest:
    """The manifest of `archive`, reading only as far as its first member."""
    with _open_stream(archive) as stream:
        return _first(stream, archive)[0]


def read_archive(
    archive: Path, *, accept: AcceptFn | None = None, place: PlaceFn | None = None
) -> ArchiveManifest:
    """Read all of `archive`, checking every rule (see the module docstring).

    `accept(manifest)` may refuse the archive (by raising) before any data
    is read. `place(member)` says where to write a data member (a new file
    in a folder that exists), or None to only check it. Every file written
    is synced. Raises `ArchiveError` when anything is wrong in the archive,
    `OSError` when writing fails (a full disk); files already written are
    then the caller's to remove.
    """
    with _open_stream(archive) as stream:
        manifest, manifest_digest = _first(stream, archive)
        if accept is not None:
            accept(manifest)
        stream.limit = (
            stream.count
            + manifest.data_bytes
            + (len(manifest.files) + 2) * _MEMBER_OVERHEAD
            + _STREAM_SLACK
        )
        sizes = {f.path: f.size for f in manifest.files}
        computed = {MANIFEST: manifest_digest}
        buffer = bytearray(_BLOCK)
        while True:
            member = stream.next()
            if member is None:
                raise _damaged(archive, "it ends before its checksums (it was cut short)")
            if member.name == CHECKSUMS:
                break
            _check_member(member, sizes, computed, archive)
            target = place(member.name) if place is not None else None
            computed[member.name] = _copy(stream, member, target, buffer, archive)
        listed = _parse_sums(
            _read_small(stream, member, len(sizes) * 2048 + 4096, archive), archive
        )
        if stream.next() is not None:
            raise _damaged(archive, f"it has members after {CHECKSUMS}")
    missing = sorted(set(sizes) - set(computed))
    if missing:
        raise _damaged(archive, f"{missing[0]} is missing (and {len(missing) - 1} more)")
    if set(listed) != set(computed):
        raise _damaged(archive, f"{CHECKSUMS} does not list exactly the files it holds")
    for name, digest in computed.items():
        if listed[name] != digest:
            raise _damaged(archive, f"{name} does not match its sha256")
    return manifest


@contextlib.contextmanager
def _open_stream(archive: Path) -> Iterator[_TarStream]:
    try:
        raw = open(archive, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise ArchiveError(
            f"There is no backup at {archive}. Check the path; `cidx backup list` shows the "
            "backups in the default folder."
        ) from None
    except IsADirectoryError:
        raise ArchiveError(
            f"{archive} is a folder, not a backup. Give the path of a {SUFFIX} file "
            f"(`cidx backup list {archive}` shows those in it)."
        ) from None
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(
            raw, read_size=_BLOCK, read_across_frames=False, closefd=False
        )
        stream = _TarStream(reader, archive, MAX_MANIFEST_BYTES + _MEMBER_OVERHEAD + _BLOCK)
        try:
            yield stream
        except zstandard.ZstdError as exc:
            raise _damaged(archive, f"its compressed data does not decode ({exc})") from None
    finally:
        raw.close()


def _first(stream: _TarStream, archive: Path) -> tuple[ArchiveManifest, str]:
    """The manifest, and the sha256 of its bytes."""
    try:
        member = stream.next()
    except (ArchiveError, zstandard.ZstdError):
        raise _not_backup(archive, "it is not a zstd-compressed tar stream") from None
    if member is None or member.name != MANIFEST or member.type not in _PLAIN:
        raise _not_backup(archive, f"it does not start with {MANIFEST}")
    data = _read_small(stream, member, MAX_MANIFEST_BYTES, archive)
    return parse_manifest(data, archive), hashlib.sha256(data).hexdigest()


# Plain regular files: the only members a cidx archive has.
_PLAIN = (tarfile.REGTYPE, tarfile.AREGTYPE)


def _read_small(stream: _TarStream, member: tarfile.TarInfo, limit: int, archive: Path) -> bytes:
    if member.type not in _PLAIN or member.size > limit:
        raise _damaged(archive, f"{member.name} is not a regular file of at most {limit:,} bytes")
    data = stream.exact(member.size, member.name)
    stream.skip_padding(member.size)
    return data


def _check_member(
    member: tarfile.TarInfo, sizes: dict[str, int], seen: dict[str, str], archive: Path
) -> None:
    name = member.name
    if member.type not in _PLAIN:
        kind = (
            "a symbolic link"
            if member.issym()
            else "a hard link"
            if member.islnk()
            else "a device"
            if member.ischr() or member.isblk()
            else "a FIFO"
            if member.isfifo()
            else "a folder"
            if member.isdir()
            else "not a plain regular file"
        )
        raise ArchiveError(
            f"The backup {archive} holds {name!r}, which is {kind}: a cidx backup holds only "
            "regular files, so this archive was not written by cidx or was tampered with. "
            "Nothing was restored from it. Use another backup (`cidx backup list` shows them)."
        )
    if name not in sizes:
        raise ArchiveError(
            f"The backup {archive} holds {name!r}, which its manifest does not list (an "
            "absolute path, a `..` or a stray file): it was not written by cidx or was "
            "tampered with. Nothing was restored from it. Use another backup (`cidx backup "
            "list` shows them)."
        )
    if name in seen:
        raise _damaged(archive, f"it holds {name} twice")
    if member.size != sizes[name]:
        raise ArchiveError(
            f"The backup {archive} holds {name} with {member.size:,} bytes where its manifest "
            f"says {sizes[name]:,}: it is damaged or was tampered with. Nothing was restored "
            "from it. Use another backup (`cidx backup list` shows them)."
        )


def _copy(
    stream: _TarStream,
    member: tarfile.TarInfo,
    target: Path | None,
    buffer: bytearray,
    archive: Path,
) -> str:
    """Read one member (writing it sparse to `target`, if given); its sha256."""
    digest = hashlib.sha256()
    view = memoryview(buffer)
    fd = -1
    try:
        if target is not None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(target, flags, 0o600)
        offset = 0
        while offset < member.size:
            want = min(_BLOCK, member.size - offset)
            n = stream.readinto(view[:want])
            if n != want:
                raise _damaged(archive, f"{member.name} is cut short")
            digest.update(view[:n])
            if fd >= 0:
                _write_sparse(fd, buffer, n, offset)
            offset += n
        stream.skip_padding(member.size)
        if fd >= 0:
            os.ftruncate(fd, member.size)
            os.fsync(fd)
            os.utime(fd, (member.mtime, member.mtime))
    finally:
        if fd >= 0:
            os.close(fd)
    return digest.hexdigest()


def _write_sparse(fd: int, buffer: bytearray, n: int, offset: int) -> None:
    """Write `buffer[:n]` at `offset`, leaving holes where whole pieces are zero."""
    start = -1
    for i in range(0, n, _HOLE):
        end = min(i + _HOLE, n)
        zero = buffer[i:end] == (_ZEROS if end - i == _HOLE else bytes(end - i))
        if zero and start >= 0:
            _pwrite(fd, buffer, start, i, offset)
            start = -1
        elif not zero and start < 0:
            start = i
    if start >= 0:
        _pwrite(fd, buffer, start, n, offset)


def _pwrite(fd: int, buffer: bytearray, start: int, end: int, offset: int) -> None:
    view = memoryview(buffer)[start:end]
    position = offset + start
    while view:
        written = os.pwrite(fd, view, position)
        view = view[written:]
        position += written


def _parse_sums(data: bytes, archive: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(archive, f"{CHECKSUMS} is not text") from None
    for line in text.splitlines():
        match = re.fullmatch(r"([0-9a-f]{64})  (.+)", line)
        if match is None or match.group(2) in sums:
            raise _damaged(archive, f"{CHECKSUMS} has a line that cannot be read: {line[:80]!r}")
        sums[match.group(2)] = match.group(1)
    return sums
