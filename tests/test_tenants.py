"""Many projects in one server collection (`"shared_collection"`): each a tenant.

The store contract tests run the tenant store as one more backend
(`server-tenant` in tests/store_kit.py); these check what only a shared
collection can get wrong — one project's points reaching another's — and
the whole path through the CLI: two projects on one server collection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cidx.errors import StoreError
from cidx.store import Nearest, PointData, PointFilter, StoreQuery
from cidx.store.server import ServerStore
from cidx.store.tenants import TenantStore
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.test_store_contract import DIM, _corpus

SHARED = "team-code"


@pytest.fixture
def store() -> Iterator[TenantStore]:
    tenants = TenantStore(ServerStore.in_memory(), SHARED)
    try:
        yield tenants
    finally:
        tenants.close()


def _relabelled(points: list[PointData], prefix: str) -> list[PointData]:
    """The same points (the same ids and vectors) under other paths."""
    return [
        PointData(p.id, p.dense, p.sparse, {**p.payload, "path": f"{prefix}/{p.payload['path']}"})
        for p in points
    ]


def test_tenants_with_the_same_points_never_see_each_other(store: TenantStore) -> None:
    points = _corpus(60)
    for name in ("alpha", "beta"):
        store.create_collection(name, DIM)
        store.upsert(name, _relabelled(points, name))
    assert store.list_collections() == ["alpha", "beta"]
    assert store.inner.list_collections() == [SHARED]
    assert store.count("alpha") == store.count("beta") == 60

    query = StoreQuery((Nearest("dense", points[7].dense, 20),), 20)
    for name in ("alpha", "beta"):
        hits = store.query(name, query)
        assert hits[0].id == points[7].id
        assert {h.payload["path"].split("/")[0] for h in hits} == {name}
        assert all("_tenant" not in h.payload and "_id" not in h.payload for h in hits)
        ids = {pid for pid, _ in store.scroll(name)}
        assert ids == {p.id for p in points}

    store.delete("alpha", [points[0].id])
    store.delete_by_filter("alpha", PointFilter(languages=("typescript",)))
    assert store.count("alpha") == 60 - 1 - 20
    assert store.count("beta") == 60
    assert {h.id for h in store.retrieve("beta", [points[0].id])} == {points[0].id}
    assert store.retrieve("alpha", [points[0].id]) == []

    store.rename_collection("alpha", "gamma")
    assert store.list_collections() == ["beta", "gamma"]
    assert store.count("gamma") == 39 and store.count("beta") == 60
    page, _next = store.page("gamma", limit=1000)
    assert {p.id for p in page} == {pid for pid, _ in store.scroll("gamma")}

    store.drop_collection("gamma")
    assert store.list_collections() == ["beta"]
    assert store.count("beta") == 60
    assert store.inner.count(SHARED) == 60 + 1  # beta's points and its record


def test_one_model_per_shared_collection(store: TenantStore) -> None:
    store.create_collection("alpha", DIM)
    with pytest.raises(StoreError, match=rf"holds {DIM}-dimensional vectors; .* makes {DIM * 2}"):
        store.create_collection("beta", DIM * 2)


def test_two_projects_in_one_shared_server_collection(tmp_path: Path) -> None:
    folder = tmp_path / "qdrant"
    a, b = tmp_path / "a", tmp_path / "b"
    for root, extra in ((a, "def parse_invoice_total():\n    pass\n"), (b, "")):
        write_files(root, DEMO_PROJECT)
        if extra:
            (root / "billing.py").write_text(extra)
        run_cidx(
            [
                "init",
                "--storage",
                "server",
                "--qdrant-url",
                f"local:{folder}",
                "--qdrant-shared-collection",
                SHARED,
            ],
            root,
        )
        config = json.loads((root / ".code-indexer" / "config.json").read_text())
        assert config["server"]["shared_collection"] == SHARED
        run_cidx(["index"], root)

    status_a = run_cidx(["status", "--json"], a).json()
    status_b = run_cidx(["status", "--json"], b).json()
    assert status_a["collection"] != status_b["collection"]
    assert status_a["storage_path"].endswith(f"collection {SHARED} tenant {status_a['collection']}")
    assert status_a["files"] == 5 and status_b["files"] == 4
    assert status_a["points"] == status_a["chunks"] and status_b["points"] == status_b["chunks"]
    # One collection on the server holds both (beside the writers' claims).
    on_server = sorted(p.name for p in (folder / "collection").iterdir())
    assert on_server == ["cidx-writer-claims", SHARED]

    found_a = run_cidx(["query", "parse invoice total", "--json"], a).json()["results"]
    found_b = run_cidx(["query", "parse invoice total", "--json"], b).json()["results"]
    assert found_a[0]["path"] == "billing.py"
    assert "billing.py" not in {r["path"] for r in found_b}
    # The same query in both projects over their common files ranks them alike.
    common = run_cidx(["query", "verify token signature", "--json", "--path", "*.py"], a).json()
    assert common["results"]


def test_a_bad_shared_collection_name_is_a_usage_error(tmp_path: Path) -> None:
    write_files(tmp_path, DEMO_PROJECT)
    out = run_cidx(
        [
            "init",
            "--storage",
            "server",
            "--qdrant-url",
            f"local:{tmp_path / 'q'}",
            "--qdrant-shared-collection",
            "../x",
        ],
        tmp_path,
        check=False,
    )
    assert out.returncode == 2
    assert "--qdrant-shared-collection: '../x' cannot name a collection" in out.stderr
    assert not (tmp_path / ".code-indexer").exists()
