"""How cidx reaches a Qdrant server, and how it lays out collections there.

`ServerSettings` is the `server` block of a project's config.json when its
`storage_mode` is `server`; it is validated data, light to import (the
client library is imported only by `cidx.store.server`). The API key is
never part of it: `api_key()` reads it when a store is opened, from
`$CIDX_QDRANT_API_KEY` or from a file only its owner may read
(`<user config folder>/qdrant-api-key`), so it is never written to a
project, logged or printed.

URLs:

    https://host:6333     a Qdrant server over REST (TLS verified; `ca_file`
                          names a private certificate authority)
    http://host:6333      plain HTTP: only to a loopback address when an API
                          key is set, so the key never crosses a network
                          unencrypted
    local:/abs/path       a testing aid: qdrant-client's in-process local mode
                          persisted in that folder (one process at a time,
                          exact search, no snapshots or cluster settings)

Defaults, and why: HNSW `m=16`, `ef_construct=100` are Qdrant's own; a
search explores `hnsw_ef=128` candidates, which keeps the top 10 of a
hybrid query's 100 candidates stable; segments below Qdrant's indexing
threshold are searched exactly, so small projects rank exactly as in the
embedded store (`exact: true` forces that everywhere). No quantization:
384 float32s are 1.5 KiB per point, and int8 scalar quantization
(`quantization: "scalar"`, with rescoring) is for collections whose
vectors no longer fit in RAM. One shard, replication factor 1 and write
consistency 1 unless a cluster is configured (see docs/server.md).
"""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cidx.errors import ConfigError

__all__ = [
    "API_KEY_ENV",
    "SHARED_COLLECTION_PATTERN",
    "ServerSettings",
    "api_key",
    "api_key_file",
    "local_path",
]

API_KEY_ENV = "CIDX_QDRANT_API_KEY"
API_KEY_FILE = "qdrant-api-key"
LOCAL_SCHEME = "local:"
# A name Qdrant takes for a collection and every filesystem for a folder.
SHARED_COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$"


class ServerSettings(BaseModel):
    """Where the Qdrant server is and how cidx's collections are made on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    # A PEM bundle of the certificate authorities to trust instead of the
    # system's (a private CA). TLS is never switched off.
    ca_file: str | None = None
    # Seconds one request may take before it counts as failed (and is retried).
    timeout: float = Field(default=30.0, gt=0)
    # Attempts after the first on a transient failure (connection refused or
    # reset, timeout, 429, 502/503/504), with exponential backoff.
    retries: int = Field(default=5, ge=0, le=20)
    # Points per upsert request; larger batches mean fewer round trips but
    # bigger requests (benchmarks/RESULTS.md, "Server store").
    upsert_batch: int = Field(default=256, ge=1, le=10_000)
    # Collection layout, used when cidx creates a collection.
    hnsw_m: int = Field(default=16, ge=0)
    hnsw_ef_construct: int = Field(default=100, ge=4)
    full_scan_threshold_kb: int | None = Field(default=None, ge=0)
    indexing_threshold_kb: int | None = Field(default=None, ge=0)
    on_disk: bool = False
    quantization: Literal["none", "scalar", "binary"] = "none"
    shard_number: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1)
    write_consistency_factor: int | None = Field(default=None, ge=1)
    # Searches.
    hnsw_ef: int | None = Field(default=128, ge=1)
    exact: bool = False
    # Keep every project's collections as tenants of this one collection
    # (payload multitenancy: `cidx.store.tenants`) instead of one each.
    shared_collection: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$"
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if url.startswith(LOCAL_SCHEME):
            if not Path(url[len(LOCAL_SCHEME) :]).is_absolute():
                raise ValueError(f"a local: URL names an absolute folder, not {url!r}")
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{url!r} is not a Qdrant server URL (https://host:6333, http://host:6333, "
                "or local:/absolute/folder for tests)"
            )
        if parts.username or parts.password:
            raise ValueError("the URL must not carry credentials; give the API key separately")
        return url.rstrip("/")

    @property
    def is_local(self) -> bool:
        return self.url.startswith(LOCAL_SCHEME)

    @property
    def loopback(self) -> bool:
        """Whether the URL names this machine (plain HTTP with a key is allowed only then)."""
        host = urlsplit(self.url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def local_path(settings: ServerSettings) -> Path:
    """The folder a `local:` URL names."""
    return Path(settings.url[len(LOCAL_SCHEME) :])


def api_key_file() -> Path:
    from cidx.userdirs import config_dir

    return config_dir() / API_KEY_FILE


def api_key() -> str | None:
    """The API key for the Qdrant server: `$CIDX_QDRANT_API_KEY`, else the key
    file when it exists. ConfigError for a key file others may read."""
    from_env = os.environ.get(API_KEY_ENV, "").strip()
    if from_env:
        return from_env
    path = api_key_file()
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the Qdrant API key file {path}: {exc.strerror}. Fix its permissions "
            f"(chmod 600 {path}) or set {API_KEY_ENV} instead."
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"The Qdrant API key file {path} may be read by other users (mode "
            f"{stat.S_IMODE(st.st_mode):o}). Make it yours alone: chmod 600 {path}"
        )
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Cannot read the Qdrant API key file {path} ({type(exc).__name__}). Write the key "
            f"there as one line of text, or set {API_KEY_ENV} instead."
        ) from None
    return key or None
