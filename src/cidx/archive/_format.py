"""The archive's layout and manifest: names, bounds, the validated manifest
model and its migrations (see `cidx.archive`)."""

from __future__ import annotations

import array
import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cidx.errors import ArchiveError

FORMAT: Literal["cidx-backup"] = "cidx-backup"
FORMAT_VERSION = 2
SUFFIX = ".tar.zst"
MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
CONFIG_MEMBER = "index/config.json"
STATE_MEMBER = "index/state.db"
# A global backup's copy of the global store's registry (SQLite's backup API).
REGISTRY_MEMBER = "registry/registry.db"
COLLECTIONS = "collections"
# The members outside `collections/` each kind of archive holds.
_OWN_MEMBERS = {
    "project": frozenset({CONFIG_MEMBER, STATE_MEMBER}),
    "global": frozenset({REGISTRY_MEMBER}),
}
# The names cidx gives collections (`cidx.config.collection_name`).
COLLECTION_NAME = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"

# Stream reads and writes go in pieces of this size.
BLOCK = 1 << 20
TAR_BLOCK = 512

# Bounds on what a reader accepts, whatever an archive says.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_FILES = 100_000
MAX_FILE_BYTES = 1 << 40
MAX_PATH = 1024
# Bytes a member may take beyond its data (headers, long-name records), and
# the slack at the end of the stream (end-of-archive blocks, padding).
MEMBER_OVERHEAD = 8 * 1024
STREAM_SLACK = 2 * BLOCK

# Step N turns a version-N manifest into a version-(N+1) one (applied in
# memory when an archive is read; archives are never rewritten).
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    # Version 2 added global backups (`kind: "global"` with the registry) and
    # `registered`; a version-1 archive is a project's, registered nowhere.
    1: lambda raw: {**raw, "registered": []},
}


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
        # `array`, not numpy: importing numpy would cost a backup or a restore
        # more time than everything else the sample query takes.
        values = array.array("f", vector)
        if sys.byteorder == "big":
            values.byteswap()
        return cls(vector=base64.b64encode(values.tobytes()).decode("ascii"), hits=hits)

    def dense(self) -> list[float]:
        values = array.array("f")
        values.frombytes(base64.b64decode(self.vector, validate=True))
        if sys.byteorder == "big":
            values.byteswap()
        return values.tolist()


class RegisteredCollection(BaseModel):
    """A collection's entry in the global store's registry, as a project in
    global storage mode had it when backed up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=COLLECTION_NAME, max_length=255)
    project_root: str
    project_id: str
    model: str


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
    # A project in global storage mode: its collections' registry entries.
    registered: list[RegisteredCollection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _safe_paths(self) -> ArchiveManifest:
        if len(self.files) > MAX_FILES:
            raise ValueError(f"lists {len(self.files):,} files, more than {MAX_FILES:,}")
        names = {c.name for c in self.collections}
        if len(names) != len(self.collections):
            raise ValueError("lists a collection twice")
        seen: set[str] = set()
        for f in self.files:
            problem = member_problem(f.path, names, self.kind)
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


def member_problem(path: str, collections: set[str], kind: str = "project") -> str | None:
    """Why `path` may not be a data member of an archive of `kind` (None: it may).

    A member is `index/config.json` or `index/state.db` (a project's backup),
    `registry/registry.db` (a global one), or a file under
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
    own = _OWN_MEMBERS.get(kind, frozenset())
    if path in own:
        return None
    if parts[0] == COLLECTIONS and len(parts) >= 3 and parts[1] in collections:
        return None
    holds = ", ".join(sorted(own))
    return f"is outside what a cidx backup of this kind holds ({holds}, collections/)"


def collection_member(collection: str, rel: str) -> str:
    """The member name of `rel` (a POSIX path inside the collection's files)."""
    return f"{COLLECTIONS}/{collection}/{rel}"


def parse_manifest(data: bytes, archive: Path) -> ArchiveManifest:
    """The manifest in `data`, brought forward to this format version."""
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise not_backup(archive, f"its manifest is not JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise not_backup(archive, "its manifest does not describe a cidx backup")
    version = raw.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise not_backup(archive, "its manifest has no valid format version")
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
        raise not_backup(archive, f"its manifest is not valid ({problems})") from None


def not_backup(archive: Path, why: str) -> ArchiveError:
    return ArchiveError(
        f"{archive} is not a cidx backup, or a damaged one: {why}. Restore another archive "
        "(`cidx backup list` shows them), or take a new backup with `cidx backup`."
    )


def damaged(archive: Path, why: str) -> ArchiveError:
    return ArchiveError(
        f"The backup {archive} is damaged: {why}. Nothing was restored from it. Use another "
        "backup (`cidx backup list` shows them), or take a new one with `cidx backup`."
    )
