"""The Qdrant Edge backend through the store interface."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from cidx.engine import Engine
from cidx.errors import StoreError
from cidx.messages import QueryRequest
from cidx.sparse import SparseEncoder
from cidx.store import Fusion, Nearest, PointData, PointFilter, StoreQuery
from cidx.store.edge import EdgeStore
from tests.conftest import write_files
from tests.helpers import generated_module, opened

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
    with pytest.raises(StoreError, match=r"does not exist.*Run `cidx index`"):
        EdgeStore(tmp_path / "none").count("c")


def _keyword_corpus(n: int) -> list[PointData]:
    """`n` points over a small vocabulary, so that every term's IDF depends on
    how many points hold it."""
    enc = SparseEncoder()
    rng = np.random.default_rng(11)
    words = "upload retry queue socket parse token cache render schema index stream".split()
    points = []
    for i in range(n):
        text = " ".join(rng.choice(words, size=6))
        vec = rng.standard_normal(DIM).astype(np.float32)
        points.append(
            PointData(
                id=f"00000000-0000-5000-8000-{i:012d}",
                dense=(vec / np.linalg.norm(vec)).tolist(),
                sparse=enc.document(text),
                payload={"path": f"f{i % 7}.py", "language": "python", "text": text},
            )
        )
    return points


def _keyword_scores(store: EdgeStore, query: str) -> dict[str, float]:
    """Every matching point's BM25 score (the limit is above the corpus size, so
    ties at a cut-off cannot make two answers differ)."""
    sparse_q = SparseEncoder().query(query)
    hits = store.query("c", StoreQuery((Nearest("sparse", sparse_q, 1000),), 1000))
    return {h.id: h.score for h in hits}


def test_bm25_statistics_forget_deleted_points_at_once(tmp_path: Path) -> None:
    """A process that deleted points ranks keyword queries exactly as a process
    that opens the shard afterwards (the engine alone would keep counting the
    deleted points in every IDF until the shard is loaded again)."""
    live = EdgeStore(tmp_path / "qdrant-data")
    live.create_collection("c", DIM)
    points = _keyword_corpus(300)
    live.upsert("c", points)
    live.delete("c", [p.id for p in points[::3]])
    live.delete_by_filter("c", PointFilter(paths=("f1.py",)))
    queries = ["upload retry", "socket parse token", "cache", "render schema index stream"]
    before = [_keyword_scores(live, q) for q in queries]
    assert all(before)
    live.close()
    fresh = EdgeStore(tmp_path / "qdrant-data")
    after = [_keyword_scores(fresh, q) for q in queries]
    fresh.close()
    # The engine sums a query's terms in no fixed order, so two processes
    # agree to float rounding (1e-7 relative), not bit for bit; the drift
    # this guards against was 1e-3.
    for old, new in zip(before, after, strict=True):
        assert new.keys() == old.keys()
        assert new == pytest.approx(old, rel=1e-6, abs=0)


def test_deleting_absent_points_is_harmless(store: EdgeStore) -> None:
    pts = _points()
    store.delete("c", [pts[0].id, "00000000-0000-5000-8000-0000000000ff"])
    assert store.count("c") == len(pts) - 1


def test_a_long_lived_engine_ranks_like_a_fresh_one_after_deletions(tmp_path: Path) -> None:
    """Keyword and hybrid answers do not depend on the process's history: the
    engine that synced the deletions answers as one opened afterwards."""
    root = tmp_path / "project"
    write_files(root, {f"pkg/m{i:03d}.py": generated_module(i) for i in range(24)})
    queries = [
        QueryRequest(text=text, limit=200, mode=mode)
        for text in ("upload retry queue", "parse token cache", "branch merge packet route")
        for mode in ("keyword", "hybrid")
    ]

    def answers(engine: Engine) -> list[dict[tuple[str, int], float]]:
        return [{(r.path, r.start_line): r.score for r in engine.search(q)} for q in queries]

    with opened(root) as engine:
        engine.sync()
        for i in range(0, 24, 3):
            (root / f"pkg/m{i:03d}.py").unlink()
        edited = root / "pkg/m001.py"
        edited.write_text(edited.read_text().replace("return total", "return total - 1"))
        summary = engine.sync()
        assert summary.files_deleted == 8 and summary.points_deleted > 8
        live = answers(engine)
    with opened(root) as engine:
        fresh = answers(engine)
    # Scores are rounded to 6 decimals, after float sums in no fixed order;
    # the drift this guards against was 1e-3 and more.
    for old, new in zip(live, fresh, strict=True):
        assert new.keys() == old.keys()
        assert new == pytest.approx(old, rel=1e-6, abs=2e-6)


def test_a_fragment_of_an_interrupted_create_or_drop_is_moved_out_of_the_way(
    tmp_path: Path,
) -> None:
    data = tmp_path / "qdrant-data"
    store = EdgeStore(data)
    store.create_collection("c", DIM)
    store.upsert("c", _points())
    store.close()
    # What a kill in the middle of deleting (or creating) the shard leaves:
    # its segments without its config.
    (data / "c" / "edge_config.json").unlink()
    again = EdgeStore(data)
    assert not again.collection_exists("c")
    again.create_collection("c", DIM)
    assert again.count("c") == 0
    (fragment,) = again.drop_set_aside("c")
    assert fragment.name.startswith("c.damaged-")
    again.drop_collection("c")
    assert list(data.iterdir()) == []


def _resident_vectors_kb(shard: Path) -> int:
    """Resident memory of this process's mappings of the shard's dense vector files."""
    total, current = 0, ""
    for row in Path("/proc/self/smaps").read_text().splitlines():
        head = row.split()
        if head and not head[0].endswith(":"):
            current = head[5] if len(head) > 5 else ""
        elif (
            head
            and head[0] == "Rss:"
            and current.startswith(str(shard))
            and "vector_storage-dense" in current
        ):
            total += int(head[1])
    return total


def test_new_shards_map_dense_vectors_cold_and_older_shards_still_open(tmp_path: Path) -> None:
    import qdrant_edge as q

    data = tmp_path / "qdrant-data"
    # A shard as cidx created them before: the engine's default placement,
    # which loads the whole first 32 MiB vector chunk when the shard opens.
    old = q.EdgeShard.create(
        str(data / "old"),
        q.EdgeConfig(
            vectors={"dense": q.EdgeVectorParams(size=DIM, distance=q.Distance.Cosine)},
            sparse_vectors={"sparse": q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
            optimizers=q.EdgeOptimizersConfig(indexing_threshold=0),
        ),
    )
    old.close()
    store = EdgeStore(data)
    try:
        store.create_collection("new", DIM)
        pts = _points()
        for name in ("old", "new"):
            store.upsert(name, pts)
            top = store.query(name, StoreQuery((Nearest("dense", pts[1].dense, 1),), 1))
            assert top[0].id == pts[1].id
    finally:
        store.close()
    again = EdgeStore(data)
    try:
        for name in ("old", "new"):
            top = again.query(name, StoreQuery((Nearest("dense", pts[2].dense, 1),), 1))
            assert top[0].id == pts[2].id and again.count(name) == len(pts)
        # Opened again: the older shard's chunk is loaded whole, the new one's
        # only as far as its vectors go.
        assert _resident_vectors_kb(data / "old") >= 16 * 1024
        assert _resident_vectors_kb(data / "new") <= 1024
    finally:
        again.close()
