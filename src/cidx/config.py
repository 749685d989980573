"""The project's `.code-indexer/config.json`: validated, versioned settings.

The file carries a `schema_version`. Older files are brought forward by the
numbered steps in `MIGRATIONS` when they are read (and written back), never
edited in place by hand-written special cases; a file from a newer cidx is
refused with a message rather than guessed at. A damaged file is refused
too, naming `cidx doctor --repair`, which recreates it around the existing
index (`cidx.recovery.recreate_config`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cidx.errors import ConfigError, UsageError
from cidx.fsutil import write_atomic
from cidx.identity import NAMING_SCHEMES, NamingScheme, collection_name, project_identity
from cidx.project import ProjectPaths
from cidx.store.server_settings import ServerSettings

StorageMode = Literal["local", "global", "server"]

CONFIG_SCHEMA_VERSION = 5
DEFAULT_MAX_FILE_SIZE = 1024 * 1024


class EmbeddingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    dim: int = Field(gt=0)
    max_length: int = Field(gt=8, le=512)


class IdentityRecord(BaseModel):
    """The project id the collections are named after, and how it was decided."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    # config / git-remote / path: see `cidx.identity`; legacy: a random id
    # given before ids were derived (kept until `cidx project update-remote`).
    source: Literal["config", "git-remote", "path", "legacy"]


class Config(BaseModel):
    """Settings of one project's index."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = CONFIG_SCHEMA_VERSION
    # The user's own id for the project: when set, it is the identity,
    # whatever the git remote says.
    project_id: str | None = None
    identity: IdentityRecord
    storage_mode: StorageMode = "local"
    # What collection names look like (`cidx.identity.collection_name`); a
    # change migrates the project's collection to its new name (`cidx.dualwrite`).
    naming_scheme: NamingScheme = "readable"
    # The Qdrant server, in "server" mode (and only then). Never holds the API key.
    server: ServerSettings | None = None
    embedding: EmbeddingSettings
    chunker_version: int = Field(ge=1)
    collection: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    project_root: str
    max_file_size: int = Field(default=DEFAULT_MAX_FILE_SIZE, gt=0)
    created_at: str

    @model_validator(mode="after")
    def _server_block_with_server_mode(self) -> Config:
        if (self.storage_mode == "server") != (self.server is not None):
            raise ValueError('a "server" block goes with storage_mode "server", and only with it')
        return self


# The next step for a damaged config; it keeps the index's data.
_REPAIR_LOWER = "run `cidx doctor --repair` to recreate it around the existing index."
_REPAIR = "R" + _REPAIR_LOWER[1:]


def _v1_identity(doc: dict[str, Any]) -> dict[str, Any]:
    """v1 → v2: the random project id becomes the recorded identity ("legacy"),
    so nothing is renamed; `project_id` becomes the user's own override."""
    doc["identity"] = {"id": str(doc.pop("project_id", "") or "unknown"), "source": "legacy"}
    doc["project_id"] = None
    return doc


# Step N turns a version-N document into a version-(N+1) document.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _v1_identity,
    # v3 adds storage_mode "server" and its "server" block; a v2 document
    # is a valid v3 one (stepped up so that an older cidx refuses a server
    # config as newer instead of as damaged).
    2: lambda doc: doc,
    # v4 adds "shared_collection" to the "server" block (absent: a collection
    # per project, as before); stepped up for the same reason.
    3: lambda doc: doc,
    # v5 adds "naming_scheme"; every earlier name is a "readable" one.
    4: lambda doc: {**doc, "naming_scheme": "readable"},
}


def new_config(
    paths: ProjectPaths,
    *,
    embedding: EmbeddingSettings,
    chunker_version: int,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    project_id: str | None = None,
    storage_mode: StorageMode = "local",
    server: ServerSettings | None = None,
) -> Config:
    who = project_identity(paths.root, project_id)
    return Config(
        project_id=project_id,
        identity=IdentityRecord(id=who.id, source=who.source),
        storage_mode="server" if server is not None else storage_mode,
        server=server,
        embedding=embedding,
        chunker_version=chunker_version,
        collection=collection_name_for(storage_mode, who.id, embedding.model_id, paths.root),
        project_root=str(paths.root),
        max_file_size=max_file_size,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def collection_name_for(
    mode: StorageMode,
    project_id: str,
    model_id: str,
    root: Path,
    scheme: NamingScheme = "readable",
) -> str:
    """The name of a project's collection in a store of `mode`, in the naming `scheme`.

    A project-local store holds one project: its identity and the model make
    the name. The shared store holds every project in global mode, and two
    copies of one project (the same identity) must not meet in one collection
    there, so the name also hashes the project's root.
    """
    if mode == "global":
        return collection_name(project_id, model_id, place=root, scheme=scheme)
    return collection_name(project_id, model_id, scheme=scheme)


def load_config(paths: ProjectPaths) -> Config:
    return read_config(paths)[0]


def read_config(paths: ProjectPaths, *, write_back: bool = True) -> tuple[Config, int | None]:
    """The project's config, brought forward to this cidx's schema (and, unless
    `write_back` is False, written back) if it was older: (config, the schema
    version it had, or None when it was current)."""
    path = paths.config_file
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"No index config at {path}. Run `cidx init` in {paths.root} to create one."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}. {_REPAIR}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a JSON object. {_REPAIR}")
    migrated = _migrate(raw, path)
    try:
        config = Config.model_validate(migrated)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(
            f"{path} is not a valid cidx config ({problems}). Fix the value, or {_REPAIR_LOWER}"
        ) from None
    if migrated is not raw:
        if write_back:
            save_config(paths, config)
        return config, int(raw["schema_version"])
    return config, None


def _migrate(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    version = raw.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise ConfigError(f"{path} has no valid schema_version. {_REPAIR}")
    if version > CONFIG_SCHEMA_VERSION:
        raise ConfigError(
            f"{path} has schema version {version}, but this cidx understands up to "
            f"{CONFIG_SCHEMA_VERSION}. Upgrade cidx to use this index."
        )
    doc = raw
    while version < CONFIG_SCHEMA_VERSION:
        doc = MIGRATIONS[version](dict(doc))
        version += 1
        doc["schema_version"] = version
    return doc


# Settings `cidx config set` changes, each with the values it takes.
SETTABLE: dict[str, tuple[str, ...]] = {"naming_scheme": NAMING_SCHEMES}


def with_setting(config: Config, key: str, value: str) -> Config:
    """`config` with `key` set to `value`; UsageError naming what is allowed."""
    if key not in SETTABLE:
        raise UsageError(
            f"{key!r} is not a setting `cidx config set` changes; it changes "
            f"{', '.join(sorted(SETTABLE))}."
        )
    if value not in SETTABLE[key]:
        raise UsageError(
            f"{value!r} is not a value of {key}; give one of {', '.join(SETTABLE[key])}."
        )
    return config.model_copy(update={key: value})


def save_config(paths: ProjectPaths, config: Config) -> None:
    """Write config.json atomically, so a crash leaves the old or the new file."""
    paths.create_index_dir()
    write_atomic(paths.config_file, config.model_dump_json(indent=2) + "\n")
