"""Opening a client to a Qdrant server, and checking what answers.

`open_client` makes the qdrant-client for a server URL (or for a `local:` URL,
qdrant-client's in-process local mode, a testing aid): where the API key
comes from (given, `$CIDX_QDRANT_API_KEY` or the key file), never sending it
over plain HTTP beyond loopback, and certificate checks that are never
switched off (`tls`). `check_version` refuses a server this client does not
support (`MIN_SERVER`..`MAX_SERVER`). No request is made here: the store
checks the server on first use.
"""

from __future__ import annotations

import os
import ssl
import warnings
from dataclasses import dataclass
from typing import Any

from qdrant_client import QdrantClient

from cidx.errors import ConfigError, ServerError, StoreError
from cidx.store.server_settings import (
    API_KEY_ENV,
    ServerSettings,
    api_key as configured_key,
    api_key_file,
    local_path,
)

__all__ = ["MAX_SERVER", "MIN_SERVER", "Connection", "check_version", "open_client", "tls"]

# Server versions this client is used with: 1.19 added prefix matching on
# keyword indexes (`path_prefixes`); a new major version may change the API.
MIN_SERVER = (1, 19)
MAX_SERVER = (2, 0)  # exclusive


@dataclass(frozen=True)
class Connection:
    """A client, and what messages and transfers need to know of it."""

    client: QdrantClient
    local: bool
    # Where the API key came from, for messages; the key itself is kept
    # only for snapshot transfers, which go around the client.
    key_source: str | None = None
    api_key: str | None = None


def open_client(settings: ServerSettings, api_key: str | None = None) -> Connection:
    """A client of the server `settings` names. No request is made.

    `api_key` defaults to `$CIDX_QDRANT_API_KEY` or the key file.
    """
    if settings.is_local:
        folder = local_path(settings)
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            client = QdrantClient(path=str(folder), force_disable_check_same_thread=True)
        except (OSError, RuntimeError) as exc:
            # portalocker's lock: another process has the folder open.
            raise StoreError(
                f"Cannot open the local-mode Qdrant folder {folder} ({exc}). It is open in "
                "another process: stop the other cidx process using it, then run the "
                "command again."
            ) from None
        return Connection(client, local=True)
    source: str | None = None
    if api_key is None:
        api_key = configured_key()
        if api_key:
            source = (
                f"from ${API_KEY_ENV}"
                if os.environ.get(API_KEY_ENV, "").strip()
                else f"in {api_key_file()}"
            )
    elif api_key:
        source = "given"
    secure = settings.url.startswith("https://")
    if api_key and not secure and not settings.loopback:
        raise ServerError(
            f"Refusing to send the Qdrant API key over plain HTTP to {settings.url}: anyone "
            "on the way could read it. Serve Qdrant over TLS and use an https:// URL "
            "(`cidx init --force --storage server --qdrant-url https://HOST:6333`)."
        )
    extra: dict[str, Any] = {}
    if settings.ca_file:
        extra["verify"] = tls(settings)
    with warnings.catch_warnings():
        # The client warns about a key over plain HTTP; only loopback gets here.
        warnings.simplefilter("ignore", UserWarning)
        client = QdrantClient(
            url=settings.url,
            port=None,
            api_key=api_key or None,
            timeout=max(1, round(settings.timeout)),
            check_compatibility=False,
            **extra,
        )
    return Connection(client, local=False, key_source=source, api_key=api_key or None)


def check_version(url: str, version: str) -> None:
    """ServerError unless `version` (as the server at `url` reports it) is
    one this client supports."""
    parsed = _version(version)
    if parsed is None or not MIN_SERVER <= parsed < MAX_SERVER:
        raise ServerError(
            f"The Qdrant server at {url} runs version {version or 'unknown'}, which "
            f"this cidx cannot use: it needs Qdrant {_dotted(MIN_SERVER)} or newer, below "
            f"{_dotted(MAX_SERVER)}. Upgrade the server (see docs/server.md), or use a "
            "cidx release made for this version."
        )


def _version(text: str) -> tuple[int, int] | None:
    parts = text.lstrip("v").split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def _dotted(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def tls(settings: ServerSettings) -> ssl.SSLContext:
    """Certificate checks for the server: the system's authorities, or only
    those in `ca_file`. Never switched off."""
    if not settings.ca_file:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"Cannot read the certificate authorities in {settings.ca_file} ({exc}). Give a PEM "
            "file: `cidx init --force --storage server --qdrant-url URL --qdrant-ca-file FILE` "
            '(or fix "ca_file" in the "server" block of .code-indexer/config.json).'
        ) from None
