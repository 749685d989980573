"""The backup archive: one zstd-compressed tar stream with a manifest and a
checksum per file, written and read in a single pass.

    manifest.json            first: what the archive holds — format version,
                             cidx version, model id and dimension, every
                             collection with its point count and a sample
                             query, every file with its size
    index/config.json        the project's config
    index/state.db           the state database (a copy made by SQLite's backup API)
    registry/registry.db     instead of the two above, in a backup of the global
                             store (`kind: "global"`): its registry, copied the same way
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

from cidx.archive._format import (
    CHECKSUMS,
    CONFIG_MEMBER,
    FORMAT_VERSION,
    MANIFEST,
    MIGRATIONS,
    REGISTRY_MEMBER,
    STATE_MEMBER,
    SUFFIX,
    ArchivedCollection,
    ArchivedFile,
    ArchiveManifest,
    RegisteredCollection,
    SampleQuery,
    collection_member,
    parse_manifest,
)
from cidx.archive._reader import read_archive, read_manifest
from cidx.archive._writer import ArchiveWriter

__all__ = [
    "CHECKSUMS",
    "CONFIG_MEMBER",
    "FORMAT_VERSION",
    "MANIFEST",
    "MIGRATIONS",
    "REGISTRY_MEMBER",
    "STATE_MEMBER",
    "SUFFIX",
    "ArchiveManifest",
    "ArchiveWriter",
    "ArchivedCollection",
    "ArchivedFile",
    "RegisteredCollection",
    "SampleQuery",
    "collection_member",
    "parse_manifest",
    "read_archive",
    "read_manifest",
]
