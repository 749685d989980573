"""Writing an archive: one pass over each file, hashed and compressed on the way."""

from __future__ import annotations

import hashlib
import os
import tarfile
import time
from pathlib import Path
from typing import IO

import zstandard

from cidx.archive._format import BLOCK, CHECKSUMS, MANIFEST, TAR_BLOCK, ArchiveManifest
from cidx.errors import ArchiveError

# zstd level 1, in the calling thread: measured on the files of a 30k-chunk
# index (264 MB, mostly float vectors) it compresses to 30.4 % at 174 MB/s,
# where level 3 gives 30.2 % at 106 MB/s; gzip (the standard library) gives
# 31.2 % at 35 MB/s. On the files of a 100k-chunk index (378 MB) one zstd
# worker thread, compressing while this thread reads and hashes, took 0.71 s
# where this thread alone took 0.57 s (and 0.81 s against 0.73 s with the
# hashing): on two cores shared with other work there is no idle core for
# it. Level -1 would save a third of the time for an archive 10 % larger
# (benchmarks/RESULTS.md, "Backup and restore").
LEVEL = 1
THREADS = 0


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
        self._buffer = bytearray(BLOCK)
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
                n = fh.readinto(view[: min(left, BLOCK)])
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
        self._out.write(bytes(2 * TAR_BLOCK))
        self._out.flush(zstandard.FLUSH_FRAME)

    def _header(self, name: str, size: int, mtime: float) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = int(mtime)
        info.mode = 0o600
        info.type = tarfile.REGTYPE
        self._out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self, size: int) -> None:
        rest = size % TAR_BLOCK
        if rest:
            self._out.write(bytes(TAR_BLOCK - rest))
