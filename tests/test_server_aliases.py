"""Aliases of a server-mode project are the server's own aliases too, changed atomically.

qdrant-client's local mode keeps aliases (in its folder), so this runs
without a server; the same test runs against a real one when
$CIDX_TEST_QDRANT_URL names it, and is otherwise skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cidx.storage import server_settings
from cidx.store.server import ServerStore
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.store_kit import require_remote


@pytest.fixture(params=["local", "remote"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "remote":
        yield require_remote()
    else:
        yield f"local:{tmp_path / 'qdrant'}"


def _server(url: str, base: Path) -> ServerStore:
    return ServerStore.connect(server_settings(url, base))


def test_alias_commands_change_the_servers_aliases(tmp_path: Path, url: str) -> None:
    root = tmp_path / "project"
    write_files(root, DEMO_PROJECT)
    run_cidx(["init", "--storage", "server", "--qdrant-url", url], root)
    run_cidx(["index"], root)
    status = run_cidx(["status", "--json"], root).json()
    collection, points = status["collection"], status["points"]
    alias = f"{collection}-live"

    run_cidx(["collections", "alias", "create", alias, collection], root)
    store = _server(url, root)
    try:
        assert store.aliases().get(alias) == collection
        assert store.count(alias) == points, "any reader of the server reaches it"
    finally:
        store.close()
    listed = run_cidx(["project", "list-aliases", "--format", "json"], root).json()
    assert alias in str(listed)

    run_cidx(["collections", "alias", "delete", alias], root)
    store = _server(url, root)
    try:
        assert alias not in store.aliases()
    finally:
        store.close()


def test_an_alias_the_state_db_no_longer_has_leaves_the_server(tmp_path: Path, url: str) -> None:
    root = tmp_path / "project"
    write_files(root, DEMO_PROJECT)
    run_cidx(["init", "--storage", "server", "--qdrant-url", url], root)
    run_cidx(["index"], root)
    collection = run_cidx(["status", "--json"], root).json()["collection"]
    store = _server(url, root)
    try:
        store.set_aliases({f"{collection}-stale": collection})
    finally:
        store.close()
    # The next alias change makes the server's aliases of this project's
    # collections exactly the project's, in one change.
    run_cidx(["collections", "alias", "create", f"{collection}-new", collection], root)
    store = _server(url, root)
    try:
        mine = {a: c for a, c in store.aliases().items() if c == collection}
        assert mine == {f"{collection}-new": collection}
        if not url.startswith("local:"):
            store.set_aliases({}, remove=[f"{collection}-new"])
    finally:
        store.close()
