"""One changed file, from its bytes to the points it becomes.

`prepare_file` reads a file the walk listed (only if it is still a regular
file: a path swapped for a FIFO or a device is never opened), hashes it,
and chunks it, deciding on the way whether it is touched but unchanged,
binary, minified, empty or indexed; the summary's account of every file is
kept here. Writing the points is the sync's (`cidx.indexer._sync`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from cidx.chunking import MINIFIED_LINE_CHARS, chunk_file, detect_language
from cidx.messages import FileIssue, IndexSummary
from cidx.representation import chunk_hash, dense_text, payload, point_id, sparse_text
from cidx.state import FileRecord
from cidx.walk import WalkedFile, special_file

# A file modified this close to when it was hashed may change again within
# the same mtime tick; such entries are re-hashed on the next sync.
RACY_SECONDS = 2.0
BINARY_SNIFF_BYTES = 8192


@dataclass
class Prepared:
    """One changed file, read, hashed and chunked, waiting to be written."""

    record: FileRecord
    points: list[tuple[str, str, str, dict[str, object]]] = field(default_factory=list)
    # (point id, dense text, sparse text, payload) per chunk


@dataclass(frozen=True)
class Gone:
    """A file whose entry must go: it vanished, or is no longer a regular file."""

    path: str


def file_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def is_racy(record: FileRecord) -> bool:
    return record.indexed_at - record.mtime_ns / 1e9 < RACY_SECONDS


def prepare_file(
    root: Path, f: WalkedFile, old: FileRecord | None, forced: bool, summary: IndexSummary
) -> Prepared | Gone | None:
    """Read, hash and chunk one changed file.

    A `Prepared` file is written with the next batch; `Gone` means the file
    is no longer one the index holds (vanished, or swapped for something
    else) and its entry must go; None means it could not be read (reported
    in `summary.failed`) and its entry stays.
    """
    abs_path = root / f.rel
    try:
        data, st = _read_regular(abs_path)
    except (FileNotFoundError, NotADirectoryError, _NotRegular) as exc:
        if isinstance(exc, _NotRegular) and not stat.S_ISDIR(exc.mode):
            # Swapped for a FIFO or device since the walk: what the walk
            # would say now.
            issue = special_file(f.rel, exc.mode)
            summary.skipped.append(FileIssue(issue.rel, issue.reason, issue.detail))
        else:
            # Gone (or now a folder) since the walk: the next walk will
            # not see this file either, so it is not part of this sync.
            summary.files_scanned -= 1
        return Gone(f.rel) if old is not None else None
    except OSError as exc:
        summary.failed.append(unreadable_issue(f.rel, exc))
        return None
    size, mtime_ns = st.st_size, st.st_mtime_ns
    if len(data) != size:
        # Changed while we read it; record a stat that forces a re-hash next time.
        mtime_ns = 0
    digest = file_hash(data)
    now = time.time()
    language = detect_language(f.rel)

    if old is not None and old.hash == digest and not forced:
        # Touched, not changed: only the stat moves.
        record = FileRecord(
            f.rel,
            size,
            mtime_ns,
            digest,
            old.status,
            old.language,
            old.chunk_ids,
            now,
            old.dense_pending,
        )
        count_unchanged(old, summary)
        return Prepared(record)

    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return not_indexed(f, "binary", size, mtime_ns, digest, language, old, summary)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        summary.warnings.append(
            FileIssue(
                f.rel,
                "invalid_utf8",
                f"not valid UTF-8 (byte {exc.start}); indexed with undecodable bytes replaced",
            )
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    chunked = chunk_file(f.rel, text)
    language = chunked.language
    if chunked.minified:
        return not_indexed(f, "minified", size, mtime_ns, digest, language, old, summary)

    if old is None or not in_index(old.status):
        summary.files_added += 1
    else:
        summary.files_modified += 1
    if not chunked.chunks:
        summary.files_empty += 1
        return Prepared(FileRecord(f.rel, size, mtime_ns, digest, "empty", language, (), now))
    summary.files_indexed += 1

    prepared = Prepared(FileRecord(f.rel, size, mtime_ns, digest, "indexed", language, (), now))
    occurrences: dict[str, int] = {}
    ids: list[str] = []
    for chunk in chunked.chunks:
        ch = chunk_hash(chunk)
        n = occurrences.get(ch, 0)
        occurrences[ch] = n + 1
        pid = point_id(f.rel, ch, n)
        ids.append(pid)
        prepared.points.append(
            (
                pid,
                dense_text(f.rel, chunk),
                sparse_text(f.rel, chunk),
                payload(f.rel, language, chunk, ch, digest),
            )
        )
    prepared.record = FileRecord(
        f.rel, size, mtime_ns, digest, "indexed", language, tuple(ids), now
    )
    return prepared


def not_indexed(
    f: WalkedFile,
    status: str,
    size: int,
    mtime_ns: int,
    digest: str,
    language: str,
    old: FileRecord | None,
    summary: IndexSummary,
) -> Prepared:
    """A file read and found not worth indexing (binary, minified): it is
    remembered with its hash, so it is not read again until it changes,
    and its old points, if any, go with the next write."""
    summary.skipped.append(skipped_issue(f.rel, status))
    if old is not None and in_index(old.status):
        summary.files_deleted += 1  # it leaves the index
    return Prepared(FileRecord(f.rel, size, mtime_ns, digest, status, language, (), time.time()))


def in_index(status: str) -> bool:
    """Whether a manifest record of this status is a file in the index."""
    return status in ("indexed", "empty")


def count_unchanged(rec: FileRecord, summary: IndexSummary) -> None:
    """Account for a file whose content is what the manifest says."""
    if rec.status == "indexed":
        summary.files_indexed += 1
        summary.files_unchanged += 1
    elif rec.status == "empty":
        summary.files_empty += 1
        summary.files_unchanged += 1
    else:
        summary.skipped.append(skipped_issue(rec.path, rec.status))


def skipped_issue(rel: str, status: str) -> FileIssue:
    if status == "minified":
        return FileIssue(
            rel,
            "minified",
            f"most of its text is in lines over {MINIFIED_LINE_CHARS:,} characters: minified or "
            "generated code or data, which would only add noise to search",
        )
    return FileIssue(rel, "binary", "binary content (a NUL byte in the first 8 KiB)")


def unreadable_issue(rel: str, exc: OSError) -> FileIssue:
    return FileIssue(
        rel,
        "unreadable",
        f"cannot read: {exc.strerror or exc}; check its permissions "
        "(it is tried again on every sync)",
    )


def may_read(path: Path) -> bool:
    """Whether this process may open `path` for reading (by permissions)."""
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.R_OK, effective_ids=effective)


class _NotRegular(Exception):
    """The path is no longer a regular file (`mode` says what it is)."""

    def __init__(self, mode: int) -> None:
        super().__init__(mode)
        self.mode = mode


# O_NONBLOCK: a path swapped for a FIFO after the stat below must not block
# the open. O_NOCTTY: a terminal device must never become ours. No
# O_NOFOLLOW: a symbolic link to a regular file is indexed, as the walk says.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _read_regular(path: Path) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file at `path`, and its stat after reading.

    The walk saw a regular file, but the path may have been replaced since.
    It is checked before opening (so a device is never opened: opening some
    has effects, a tape rewinding or a watchdog starting) and through the
    open descriptor after (the path may change between the two). Raises
    `_NotRegular` for anything else, and OSError as `open` does. The stat
    is the descriptor's, so it belongs to the bytes read even if the path is
    replaced meanwhile.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _NotRegular(mode)
    fd = os.open(path, _OPEN_FLAGS)
    with open(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegular(mode)
        data = fh.read()
        return data, os.fstat(fd)
