"""The Qdrant Edge backend through the store interface."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from cidx.errors import StoreError
from cidx.sparse import SparseEncoder
from cidx.store import Fusion, Nearest, PointData, PointFilter, StoreQuery
from cidx.store.edge import EdgeStore

DIM = 8


def _points() -> list[PointData]:
    enc = SparseEncoder()
    rng = np.random.default_rng(7)
    docs = [
        ("src/upload.py", "python", "def retry_upload(): pass"),
        ("src/upload_test.py", "python", "def test_retry_upload(): pass"),
        ("docs/guide.md", "markdown", "Uploads are retried three times"),
        ("web/app.ts", "typescript", "function renderPage() {}"),
    ]
    points = []
    for i, (path, lang, text) in enumerate(docs):
        vec = rng.standard_normal(DIM).astype(np.float32)
        points.append(
            PointData(
                id=f"00000000-0000-5000-8000-00000000000{i}",
                dense=(vec / np.linalg.norm(vec)).tolist(),
                sparse=enc.document(text),
                payload={"path": path, "language": lang, "kind": "function", "text": text},
            )
        )
    return points


@pytest.fixture
def store(tmp_path: Path) -> EdgeStore:
    s = EdgeStore(tmp_path / "qdrant-data")
    s.create_collection("c", DIM)
    s.upsert("c", _points())
    yield s
    s.close()


def test_dense_sparse_and_fused_search(store: EdgeStore) -> None:
    pts = _points()
    dense = store.query("c", StoreQuery((Nearest("dense", pts[3].dense, 2),), 2))
    assert dense[0].id == pts[3].id and dense[0].score == pytest.approx(1.0, abs=1e-5)
    sparse_q = SparseEncoder().query("retry upload")
    keyword = store.query("c", StoreQuery((Nearest("sparse", sparse_q, 10),), 10))
    # Stemming: "Uploads are retried" matches "retry upload" too.
    assert {h.payload["path"] for h in keyword} == {
        "src/upload.py",
        "src/upload_test.py",
        "docs/guide.md",
    }
    fused = store.query(
        "c",
        StoreQuery(
            (Nearest("dense", pts[0].dense, 10), Nearest("sparse", sparse_q, 10)),
            3,
            fusion=Fusion(),
        ),
    )
    # Dense ranks 0, 2, 1, 3 and BM25 ranks 2, 0, 1: RRF ties 0 and 2 exactly
    # (in no fixed order), then 1, then 3, which only one side found.
    assert {h.id for h in fused[:2]} == {pts[0].id, pts[2].id}
    assert [h.id for h in fused[2:]] == [pts[1].id]


def test_filters(store: EdgeStore) -> None:
    q = _points()[0].dense

    def paths(flt: PointFilter) -> set[str]:
        return {
            h.payload["path"]
            for h in store.query("c", StoreQuery((Nearest("dense", q, 10),), 10, filter=flt))
        }

    assert paths(PointFilter(paths=("docs/guide.md",))) == {"docs/guide.md"}
    assert paths(PointFilter(path_prefixes=("src/",))) == {"src/upload.py", "src/upload_test.py"}
    assert paths(PointFilter(languages=("markdown", "typescript"))) == {
        "docs/guide.md",
        "web/app.ts",
    }
    assert paths(PointFilter(path_prefixes=("src/",), languages=("markdown",))) == set()
    assert store.count("c", PointFilter(languages=("python",))) == 2


def test_delete_scroll_and_reopen(store: EdgeStore, tmp_path: Path) -> None:
    pts = _points()
    store.delete("c", [pts[0].id])
    store.delete_by_filter("c", PointFilter(languages=("typescript",)))
    assert store.count("c") == 2
    assert dict(store.scroll("c", payload_fields=["path"])) == {
        pts[1].id: {"path": "src/upload_test.py"},
        pts[2].id: {"path": "docs/guide.md"},
    }
    store.close()
    again = EdgeStore(tmp_path / "qdrant-data")
    assert again.list_collections() == ["c"]
    assert again.count("c") == 2
    assert again.info("c").disk_bytes and again.info("c").points == 2
    again.close()


def _open_in_child(path: str, out: multiprocessing.Queue[str]) -> None:
    try:
        EdgeStore(Path(path)).count("c")
        out.put("opened")
    except StoreError as exc:
        out.put(exc.message)


def test_a_second_process_cannot_open_an_open_shard(store: EdgeStore, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[str] = ctx.Queue()
    child = ctx.Process(target=_open_in_child, args=(str(tmp_path / "qdrant-data"), out))
    child.start()
    child.join(60)
    assert "open in another process" in out.get(timeout=5)


def test_missing_collection_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"does not exist.*cidx index --clear"):
        EdgeStore(tmp_path / "none").count("c")
