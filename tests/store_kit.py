"""Stores for the contract tests: every backend behind the same interface.

    edge            the embedded Qdrant Edge engine (the reference)
    server-memory   the server store on qdrant-client's local mode, in memory
    server-local    the same, persisted in a folder (`local:` URLs)
    server-tenant   the server store's shared-collection mode (each cidx
                    collection a tenant of one collection), in memory
    server-remote   the server store on a real Qdrant server: only when
                    $CIDX_TEST_QDRANT_URL names one ($CIDX_TEST_QDRANT_API_KEY
                    its key), otherwise skipped with that reason

Collections on a real server get unique names and are dropped afterwards,
so a shared test server is left as it was found.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cidx.store import Hit, VectorStore
from cidx.store.edge import EdgeStore
from cidx.store.server import ServerStore
from cidx.store.server_settings import ServerSettings
from cidx.store.tenants import TenantStore

BACKENDS = ("edge", "server-memory", "server-local", "server-tenant", "server-remote")
SERVER_BACKENDS = ("server-memory", "server-local", "server-remote")
# Backends whose data outlives `close`.
PERSISTENT = ("edge", "server-local", "server-remote")
REMOTE_ENV = "CIDX_TEST_QDRANT_URL"
REMOTE_KEY_ENV = "CIDX_TEST_QDRANT_API_KEY"
NO_SERVER = (
    f"needs a real Qdrant server: set ${REMOTE_ENV} (and ${REMOTE_KEY_ENV} if it has an "
    "API key); no Qdrant server binary can be installed here"
)


def remote_url() -> str | None:
    return os.environ.get(REMOTE_ENV) or None


def require_remote() -> str:
    url = remote_url()
    if url is None:
        pytest.skip(NO_SERVER)
    return url


@dataclass
class Backend:
    """One backend: how to open its store (again), and a collection name for it."""

    kind: str
    open: Callable[[], VectorStore]
    name: str

    @property
    def is_server(self) -> bool:
        return self.kind.startswith("server")


def backend(kind: str, tmp_path: Path, **settings: object) -> Backend:
    name = f"cidx-test-{uuid.uuid4().hex[:12]}"
    if kind == "edge":
        return Backend(kind, lambda: EdgeStore(tmp_path / "qdrant-data"), name)
    if kind == "server-memory":
        return Backend(
            kind,
            lambda: ServerStore.in_memory(ServerSettings(url="local:/memory", **settings)),
            name,
        )
    if kind == "server-tenant":
        settings = {"shared_collection": "cidx-shared", **settings}
        return Backend(
            kind,
            lambda: TenantStore(
                ServerStore.in_memory(ServerSettings(url="local:/memory", **settings)),
                "cidx-shared",
            ),
            name,
        )
    if kind == "server-local":
        url = f"local:{tmp_path / 'qdrant-local'}"
        return Backend(kind, lambda: ServerStore.connect(ServerSettings(url=url, **settings)), name)
    url = require_remote()
    key = os.environ.get(REMOTE_KEY_ENV)
    return Backend(
        kind,
        lambda: ServerStore.connect(ServerSettings(url=url, **settings), api_key=key or ""),
        name,
    )


def same_ranking(got: list[Hit], want: list[Hit], rel: float = 1e-4) -> None:
    """Assert two rankings agree: the same scores rank by rank, and the same
    points at each score. Points tied on one score may come in any order,
    and which of them make the cut at the limit is the engine's choice."""
    assert len(got) == len(want), (len(got), len(want))
    for a, b in zip(got, want, strict=True):
        assert a.score == pytest.approx(b.score, rel=rel, abs=rel), (a, b)

    def levels(hits: list[Hit]) -> list[set[str]]:
        out: list[set[str]] = []
        last: float | None = None
        for h in hits:
            if last is None or abs(h.score - last) > rel * max(1.0, abs(h.score)):
                out.append(set())
            out[-1].add(h.id)
            last = h.score
        return out

    mine, theirs = levels(got), levels(want)
    assert mine[:-1] == theirs[:-1]
