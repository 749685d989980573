"""Reading an archive: strictly, in one pass, trusting nothing (see `cidx.archive`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import zstandard

from cidx.archive._format import (
    BLOCK,
    CHECKSUMS,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    MEMBER_OVERHEAD,
    STREAM_SLACK,
    SUFFIX,
    TAR_BLOCK,
    ArchiveManifest,
    damaged,
    not_backup,
    parse_manifest,
)
from cidx.errors import ArchiveError

# Extracted data is checked for zeros in pieces of this size; an all-zero
# piece is skipped (a hole), as the store's own sparse files had it.
HOLE = 64 * 1024
ZEROS = bytes(HOLE)


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
        self._header = bytearray(TAR_BLOCK)

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
            raise damaged(self.archive, f"it ends inside {what} (it was cut short)")
        return bytes(data)

    def skip_padding(self, size: int) -> None:
        rest = size % TAR_BLOCK
        if rest:
            self.exact(TAR_BLOCK - rest, "the padding of a member")

    def next(self) -> tarfile.TarInfo | None:
        """The next member's header (its data follows), or None at the end."""
        pax: dict[str, str] = {}
        while True:
            view = memoryview(self._header)
            n = self.readinto(view)
            if n == 0 or (n == TAR_BLOCK and not any(self._header)):
                # The end: the stream ends, or the end-of-archive zero blocks.
                return None
            if n != TAR_BLOCK:
                raise damaged(self.archive, "it ends inside a member header (it was cut short)")
            try:
                info = tarfile.TarInfo.frombuf(bytes(self._header), "utf-8", "surrogateescape")
            except tarfile.HeaderError as exc:
                raise damaged(self.archive, f"its tar stream is broken ({exc})") from None
            if info.type == tarfile.XHDTYPE and not pax:
                if info.size > MEMBER_OVERHEAD:
                    raise damaged(self.archive, "it has an oversized pax header")
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
                    raise damaged(self.archive, "a pax header gives a size that is no number")
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
            raise damaged(archive, "it has a pax header that cannot be read")
        end = pos + int(length)
        record = data[space + 1 : end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise damaged(archive, "it has a pax header that cannot be read")
        key, _, value = record[:-1].partition(b"=")
        try:
            records[key.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise damaged(archive, "it has a pax header that is not UTF-8") from None
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
            + (len(manifest.files) + 2) * MEMBER_OVERHEAD
            + STREAM_SLACK
        )
        sizes = {f.path: f.size for f in manifest.files}
        computed = {MANIFEST: manifest_digest}
        buffer = bytearray(BLOCK)
        while True:
            member = stream.next()
            if member is None:
                raise damaged(archive, "it ends before its checksums (it was cut short)")
            if member.name == CHECKSUMS:
                break
            _check_member(member, sizes, computed, archive)
            target = place(member.name) if place is not None else None
            computed[member.name] = _copy(stream, member, target, buffer, archive)
        listed = _parse_sums(
            _read_small(stream, member, len(sizes) * 2048 + 4096, archive), archive
        )
        if stream.next() is not None:
            raise damaged(archive, f"it has members after {CHECKSUMS}")
    missing = sorted(set(sizes) - set(computed))
    if missing:
        raise damaged(archive, f"{missing[0]} is missing (and {len(missing) - 1} more)")
    if set(listed) != set(computed):
        raise damaged(archive, f"{CHECKSUMS} does not list exactly the files it holds")
    for name, digest in computed.items():
        if listed[name] != digest:
            raise damaged(archive, f"{name} does not match its sha256")
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
            raw, read_size=BLOCK, read_across_frames=False, closefd=False
        )
        stream = _TarStream(reader, archive, MAX_MANIFEST_BYTES + MEMBER_OVERHEAD + BLOCK)
        try:
            yield stream
        except zstandard.ZstdError as exc:
            raise damaged(archive, f"its compressed data does not decode ({exc})") from None
    finally:
        raw.close()


def _first(stream: _TarStream, archive: Path) -> tuple[ArchiveManifest, str]:
    """The manifest, and the sha256 of its bytes."""
    try:
        member = stream.next()
    except (ArchiveError, zstandard.ZstdError):
        raise not_backup(archive, "it is not a zstd-compressed tar stream") from None
    if member is None or member.name != MANIFEST or member.type not in _PLAIN:
        raise not_backup(archive, f"it does not start with {MANIFEST}")
    data = _read_small(stream, member, MAX_MANIFEST_BYTES, archive)
    return parse_manifest(data, archive), hashlib.sha256(data).hexdigest()


# Plain regular files: the only members a cidx archive has.
_PLAIN = (tarfile.REGTYPE, tarfile.AREGTYPE)


def _read_small(stream: _TarStream, member: tarfile.TarInfo, limit: int, archive: Path) -> bytes:
    if member.type not in _PLAIN or member.size > limit:
        raise damaged(archive, f"{member.name} is not a regular file of at most {limit:,} bytes")
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
        raise damaged(archive, f"it holds {name} twice")
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
            want = min(BLOCK, member.size - offset)
            n = stream.readinto(view[:want])
            if n != want:
                raise damaged(archive, f"{member.name} is cut short")
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
    for i in range(0, n, HOLE):
        end = min(i + HOLE, n)
        zero = buffer[i:end] == (ZEROS if end - i == HOLE else bytes(end - i))
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
        raise damaged(archive, f"{CHECKSUMS} is not text") from None
    for line in text.splitlines():
        match = re.fullmatch(r"([0-9a-f]{64})  (.+)", line)
        if match is None or match.group(2) in sums:
            raise damaged(archive, f"{CHECKSUMS} has a line that cannot be read: {line[:80]!r}")
        sums[match.group(2)] = match.group(1)
    return sums
