"""The store contract: every operation cidx uses, against every backend.

Each test runs on the embedded engine and on the server store (qdrant-client's
local mode in memory and in a folder, and a real Qdrant server when
$CIDX_TEST_QDRANT_URL names one). Searches on the server store are compared
with the embedded store's answers to the same queries over the same points:
same scores, same points at each score. What local mode lacks (snapshots,
cluster settings) runs against the real server only, and is skipped with
that reason otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from cidx.errors import StoreError
from cidx.sparse import SparseEncoder
from cidx.store import (
    Fusion,
    Nearest,
    PointData,
    PointFilter,
    SparseVec,
    StoreQuery,
    VectorStore,
)
from cidx.store.edge import EdgeStore
from cidx.store.server import ServerStore
from tests.store_kit import (
    BACKENDS,
    PERSISTENT,
    SERVER_BACKENDS,
    Backend,
    backend,
    require_remote,
    same_ranking,
)

DIM = 16
WORDS = [f"w{i}x" for i in range(300)] + (
    "upload retry queue socket parse token cache render schema index stream".split()
)


def _corpus(n: int, seed: int = 3) -> list[PointData]:
    """`n` points with random unit vectors and texts over a vocabulary where
    some words are common and most are rare, so IDF matters."""
    enc = SparseEncoder()
    rng = np.random.default_rng(seed)
    points = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(4, 15))))
        vec = rng.standard_normal(DIM).astype(np.float32)
        points.append(
            PointData(
                id=str(uuid.UUID(int=i + 1)),
                dense=(vec / np.linalg.norm(vec)).tolist(),
                sparse=enc.document(text),
                payload={
                    "path": f"{('src', 'docs', 'web')[i % 3]}/f{i % 37}.py",
                    "language": ("python", "markdown", "typescript")[i % 3],
                    "kind": ("function", "class")[i % 2],
                    "text": text,
                },
            )
        )
    return points


@pytest.fixture
def bs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Backend, VectorStore]]:
    """(backend, an open store) for the `kind` the test is parametrized with."""
    b = backend(request.param, tmp_path)
    store = b.open()
    try:
        yield b, store
    finally:
        if b.kind == "server-remote":
            for name in store.list_collections():
                if name.startswith(b.name):
                    store.drop_collection(name)
        store.close()


def _filled(b: Backend, store: VectorStore, points: list[PointData]) -> str:
    store.create_collection(b.name, DIM)
    store.upsert(b.name, points)
    return b.name


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeStore]:
    """The embedded store holding `_corpus(400)`: what every backend must answer."""
    store = EdgeStore(tmp_path_factory.mktemp("reference") / "qdrant-data")
    store.create_collection("ref", DIM)
    store.upsert("ref", _corpus(400))
    yield store
    store.close()


every = pytest.mark.parametrize("bs", BACKENDS, indirect=True)
servers = pytest.mark.parametrize("bs", SERVER_BACKENDS, indirect=True)
persistent = pytest.mark.parametrize("kind", PERSISTENT)


# -- collections --------------------------------------------------------------------


@every
def test_collections_are_created_listed_and_dropped(bs: tuple[Backend, VectorStore]) -> None:
    b, store = bs
    assert not store.collection_exists(b.name)
    store.create_collection(b.name, DIM)
    assert store.collection_exists(b.name)
    assert b.name in store.list_collections()
    assert store.count(b.name) == 0
    store.drop_collection(b.name)
    assert not store.collection_exists(b.name)
    assert b.name not in store.list_collections()


@every
def test_a_missing_collection_is_a_clear_error(bs: tuple[Backend, VectorStore]) -> None:
    b, store = bs
    with pytest.raises(StoreError, match=r"does not exist.*Run `cidx index`"):
        store.count(b.name + "-none")


@every
def test_set_aside(bs: tuple[Backend, VectorStore]) -> None:
    """The embedded store moves a damaged shard aside until `drop_set_aside`;
    a server keeps nothing aside (its collections are never reported damaged):
    the collection is dropped and a rebuild refills it."""
    b, store = bs
    name = _filled(b, store, _corpus(20))
    aside = store.set_aside(name)
    assert not store.collection_exists(name)
    store.create_collection(name, DIM)
    assert store.count(name) == 0
    if b.is_server:
        assert aside is None
        assert store.drop_set_aside(name) == []
    else:
        assert aside is not None and aside.is_dir()
        assert store.drop_set_aside(name) == [aside]
        assert not aside.exists()


@every
def test_rename_keeps_every_point_and_its_answers(bs: tuple[Backend, VectorStore]) -> None:
    """A renamed collection holds the same points and answers the same
    searches (the server store copies what the embedded store renames)."""
    b, store = bs
    points = _corpus(150)
    name = _filled(b, store, points)
    dense, sparse = points[7].dense, points[7].sparse
    query = StoreQuery(
        (Nearest("dense", dense, 40), Nearest("sparse", sparse, 40)),
        40,
        rescore=Nearest("sparse", sparse, 40),
    )
    before = store.query(name, query)
    other = _filled(Backend(b.kind, b.open, b.name + "-other"), store, points[:3])
    with pytest.raises(StoreError, match="exists already"):
        store.rename_collection(name, other)
    store.drop_collection(other)

    new = b.name + "-renamed"
    store.rename_collection(name, new)
    assert not store.collection_exists(name)
    assert store.count(new) == len(points)
    assert {pid for pid, _ in store.scroll(new)} == {p.id for p in points}
    same_ranking(store.query(new, query), before, rel=1e-6)
    store.delete(new, [points[0].id])  # still a full collection, writes included
    assert store.count(new) == len(points) - 1


# -- points ----------------------------------------------------------------------------


@every
def test_points_are_written_counted_read_and_scrolled(bs: tuple[Backend, VectorStore]) -> None:
    b, store = bs
    points = _corpus(120)
    name = _filled(b, store, points)
    assert store.count(name) == 120
    by_id = {p.id: p for p in points}
    got = store.retrieve(name, [points[5].id, points[77].id, str(uuid.UUID(int=10_000))])
    assert {h.id: h.payload for h in got} == {
        points[5].id: points[5].payload,
        points[77].id: points[77].payload,
    }
    scrolled = dict(store.scroll(name, payload_fields=["path"], batch=17))
    assert scrolled == {p.id: {"path": p.payload["path"]} for p in points}
    assert dict(store.scroll(name, batch=50)) == {p.id: {} for p in points}
    records = list(store.points(name, batch=33))
    assert {r.id for r in records} == set(by_id)
    for r in records:
        assert r.payload == by_id[r.id].payload
        assert r.dense == pytest.approx(by_id[r.id].dense, abs=1e-5)
    # Upserting the same ids again replaces, never duplicates.
    store.upsert(name, points[:10])
    assert store.count(name) == 120


@every
def test_copy_page_copies_whole_points_page_by_page_leaving_out_what_skip_names(
    bs: tuple[Backend, VectorStore],
) -> None:
    b, store = bs
    points = _corpus(90)
    name = _filled(b, store, points)
    copy = f"{b.name}-copy"
    store.create_collection(copy, DIM)
    left_out = {points[3].id, points[50].id}
    asked: list[list[str]] = []

    def skip(ids: Sequence[str]) -> set[str]:
        asked.append(list(ids))
        return left_out & set(ids)

    offset: str | None = None
    written = 0
    while True:
        n, offset = store.copy_page(name, copy, offset=offset, limit=40, skip=skip)
        written += n
        if offset is None:
            break
    assert [len(ids) for ids in asked] == [40, 40, 10]
    assert written == 88 and store.count(copy) == 88
    want = {p.id: p for p in points if p.id not in left_out}
    got: dict[str, PointData] = {}
    offset = None
    while True:
        page, offset = store.page(copy, offset=offset, limit=50)
        got.update((p.id, p) for p in page)
        if offset is None:
            break
    assert set(got) == set(want)
    for pid, point in want.items():
        assert got[pid].payload == point.payload
        assert got[pid].sparse.indices == point.sparse.indices
        assert got[pid].sparse.values == pytest.approx(point.sparse.values, abs=1e-5)
        assert got[pid].dense == pytest.approx(point.dense, abs=1e-5)


@every
def test_filters(bs: tuple[Backend, VectorStore]) -> None:
    b, store = bs
    points = _corpus(90)
    name = _filled(b, store, points)

    def ids(flt: PointFilter) -> set[str]:
        return {pid for pid, _ in store.scroll(name, flt=flt)}

    def want(pred: object) -> set[str]:
        return {p.id for p in points if pred(p.payload)}  # type: ignore[operator]

    some = ("src/f3.py", "docs/f4.py", "web/none.py")
    assert ids(PointFilter(paths=some)) == want(lambda p: p["path"] in some)
    assert ids(PointFilter(path_prefixes=("src/", "web/f1"))) == want(
        lambda p: p["path"].startswith(("src/", "web/f1"))
    )
    assert ids(PointFilter(languages=("markdown", "typescript"))) == want(
        lambda p: p["language"] in ("markdown", "typescript")
    )
    assert ids(PointFilter(kinds=("class",))) == want(lambda p: p["kind"] == "class")
    assert ids(PointFilter(path_prefixes=("src/",), languages=("markdown",))) == set()
    assert store.count(name, PointFilter(languages=("python",))) == 30
    # A filtered search returns only matching points, and all of them if asked.
    flt = PointFilter(path_prefixes=("docs/",), kinds=("function",))
    hits = store.query(name, StoreQuery((Nearest("dense", points[0].dense, 200),), 200, filter=flt))
    assert (
        {h.id for h in hits}
        == ids(flt)
        == want(lambda p: p["path"].startswith("docs/") and p["kind"] == "function")
    )


@every
def test_deletes(bs: tuple[Backend, VectorStore]) -> None:
    b, store = bs
    points = _corpus(60)
    name = _filled(b, store, points)
    store.delete(name, [points[0].id, str(uuid.UUID(int=99_999))])  # an absent id is harmless
    store.delete(name, [])
    assert store.count(name) == 59
    store.delete_by_filter(name, PointFilter(languages=("typescript",)))
    assert store.count(name) == 59 - 20
    assert store.count(name, PointFilter(languages=("typescript",))) == 0
    with pytest.raises(ValueError, match="empty filter"):
        store.delete_by_filter(name, PointFilter())


@every
def test_points_stored_without_dense_vectors_get_them_later(
    bs: tuple[Backend, VectorStore],
) -> None:
    """What a staged sync relies on: a point may hold only its BM25 vector;
    dense searches skip it until `set_dense` adds one, keeping the rest."""
    b, store = bs
    points = _corpus(40)
    late = {p.id for p in points[::2]}
    store.create_collection(b.name, DIM)
    store.upsert(
        b.name,
        [PointData(p.id, [], p.sparse, p.payload) if p.id in late else p for p in points],
    )
    assert store.count(b.name) == 40
    dense = StoreQuery((Nearest("dense", points[0].dense, 40),), 40)
    sparse = StoreQuery((Nearest("sparse", points[0].sparse, 40),), 40)
    assert {h.id for h in store.query(b.name, dense)} == {p.id for p in points} - late
    found = {h.id for h in store.query(b.name, sparse)}
    assert found & late  # BM25 finds points without a dense vector
    records = {r.id: r.dense for r in store.points(b.name)}
    assert all(not records[i] for i in late)
    chosen = [p for p in points if p.id in late]
    store.set_dense(b.name, [p.id for p in chosen], [p.dense for p in chosen])
    assert {h.id for h in store.query(b.name, dense)} == {p.id for p in points}
    assert {h.id for h in store.query(b.name, sparse)} == found
    by_id = {p.id: p for p in points}
    for r in store.points(b.name):
        assert r.payload == by_id[r.id].payload
        assert r.dense == pytest.approx(by_id[r.id].dense, abs=1e-5)


@pytest.mark.parametrize("kind", SERVER_BACKENDS)
def test_bounded_upsert_batches(kind: str, tmp_path: Path) -> None:
    """Many points in one call go to the server in requests of `upsert_batch`."""
    b = backend(kind, tmp_path, upsert_batch=7)
    store = b.open()
    assert isinstance(store, ServerStore)
    sizes: list[int] = []
    real = store.client.upsert

    def counted(name: str, points: list[object], **kw: object) -> object:
        sizes.append(len(points))
        return real(name, points, **kw)  # type: ignore[arg-type]

    store.client.upsert = counted  # type: ignore[method-assign]
    try:
        points = _corpus(100)
        name = _filled(b, store, points)
        assert sizes == [7] * 14 + [2]
        assert {pid for pid, _ in store.scroll(name)} == {p.id for p in points}
    finally:
        if kind == "server-remote":
            store.drop_collection(b.name)
        store.close()


# -- searches --------------------------------------------------------------------------


def _queries(seed: int, n: int) -> list[tuple[list[float], SparseVec]]:
    rng = np.random.default_rng(seed)
    enc = SparseEncoder()
    common = WORDS[300:]
    out = []
    for _ in range(n):
        vec = rng.standard_normal(DIM).astype(np.float32)
        words = [*rng.choice(common, size=2), *rng.choice(WORDS[:300], size=2)]
        out.append(((vec / np.linalg.norm(vec)).tolist(), enc.query(" ".join(words))))
    return out


def _searches(dense: list[float], sparse: SparseVec) -> list[tuple[str, StoreQuery]]:
    both = (Nearest("dense", dense, 50), Nearest("sparse", sparse, 50))
    return [
        ("dense", StoreQuery((Nearest("dense", dense, 20),), 20)),
        ("sparse", StoreQuery((Nearest("sparse", sparse, 20),), 20)),
        ("rescore dense", StoreQuery(both, 100, rescore=Nearest("dense", dense, 100))),
        (
            "rescore sparse",
            StoreQuery(both, 100, rescore=Nearest("sparse", sparse, 100), with_payload=False),
        ),
        ("dbsf", StoreQuery(both, 20, fusion=Fusion(method="dbsf"))),
        (
            "filtered rescore",
            StoreQuery(
                both,
                100,
                rescore=Nearest("sparse", sparse, 100),
                filter=PointFilter(path_prefixes=("src/", "docs/f1"), kinds=("function",)),
            ),
        ),
        (
            "filtered dense",
            StoreQuery(
                (Nearest("dense", dense, 30),),
                30,
                filter=PointFilter(languages=("markdown",), paths=("docs/f4.py", "docs/f7.py")),
            ),
        ),
    ]


@servers
def test_searches_answer_as_the_embedded_store(
    bs: tuple[Backend, VectorStore], reference: EdgeStore
) -> None:
    """Dense, BM25 (IDF over the whole collection), both re-scored as hybrid
    search does, fused, and filtered: the same answers as the embedded store."""
    b, store = bs
    name = _filled(b, store, _corpus(400))
    for dense, sparse in _queries(5, 12):
        for label, query in _searches(dense, sparse):
            got = store.query(name, query)
            assert got, label
            same_ranking(got, reference.query("ref", query))
            if query.with_payload:
                assert all(h.payload for h in got), label
            else:
                assert not any(h.payload for h in got), label


@servers
def test_rrf_answers_as_the_embedded_store(bs: tuple[Backend, VectorStore], tmp_path: Path) -> None:
    """Rank fusion, plain and weighted, over sources without tied scores (RRF
    scores depend on ranks, and the order of tied points is the engine's)."""
    b, store = bs
    rng = np.random.default_rng(21)
    points = []
    for i in range(200):
        vec = rng.standard_normal(DIM).astype(np.float32)
        indices = sorted(int(x) for x in rng.choice(40, size=5, replace=False))
        points.append(
            PointData(
                str(uuid.UUID(int=i + 1)),
                (vec / np.linalg.norm(vec)).tolist(),
                SparseVec(indices, rng.uniform(0.1, 2.0, size=5).tolist()),
                {"path": f"f{i}.py"},
            )
        )
    ref = EdgeStore(tmp_path / "rrf-ref")
    ref.create_collection("ref", DIM)
    ref.upsert("ref", points)
    name = _filled(b, store, points)
    for dense, _ in _queries(8, 6):
        sparse = SparseVec(list(range(0, 40, 3)), rng.uniform(0.1, 1.0, size=14).tolist())
        both = (Nearest("dense", dense, 40), Nearest("sparse", sparse, 40))
        for fusion in (Fusion(), Fusion(weights=(4.0, 1.0)), Fusion(rrf_k=2, weights=(1.0, 3.0))):
            query = StoreQuery(both, 20, fusion=fusion)
            same_ranking(store.query(name, query), ref.query("ref", query), rel=1e-6)
    ref.close()


@every
def test_weighted_rrf_stretches_ranks(bs: tuple[Backend, VectorStore]) -> None:
    """Qdrant's weighted RRF adds 1 / (rank / weight + k - 1) per source, so at
    the default k = 60 a larger weight makes its source's order count *less*
    (a weight stretches ranks, it does not scale contributions); at a small
    k it counts more. The embedded engine and the server behave alike."""
    b, store = bs
    ids = [str(uuid.UUID(int=i + 1)) for i in range(3)]
    # Dense ranks the points 0, 1, 2; BM25 ranks them 2, 1, 0.
    store.create_collection(b.name, 4)
    store.upsert(
        b.name,
        [
            PointData(ids[0], [1.0, 0.0, 0.0, 0.0], SparseVec([1], [0.1]), {}),
            PointData(ids[1], [0.8, 0.6, 0.0, 0.0], SparseVec([1], [0.5]), {}),
            PointData(ids[2], [0.5, 0.86, 0.0, 0.0], SparseVec([1], [0.9]), {}),
        ],
    )
    both = (Nearest("dense", [1.0, 0.0, 0.0, 0.0], 3), Nearest("sparse", SparseVec([1], [1.0]), 3))

    def top(fusion: Fusion) -> str:
        return store.query(b.name, StoreQuery(both, 3, fusion=fusion))[0].id

    assert top(Fusion(weights=(4.0, 1.0))) == ids[2]  # dense weighted up: BM25's order wins
    assert top(Fusion(weights=(1.0, 4.0))) == ids[0]
    assert top(Fusion(rrf_k=1, weights=(4.0, 1.0))) == ids[0]  # small k: as documented


@every
def test_query_batch_is_each_query_alone(bs: tuple[Backend, VectorStore]) -> None:
    b, store = bs
    name = _filled(b, store, _corpus(150))
    queries = [q for dense, sparse in _queries(9, 4) for _, q in _searches(dense, sparse)]
    batched = store.query_batch(name, queries)
    assert len(batched) == len(queries)
    for query, hits in zip(queries, batched, strict=True):
        # Points tied on a score may come in either order (the embedded
        # engine's order among ties differs between a batch and a query).
        same_ranking(hits, store.query(name, query), rel=1e-6)
    assert store.query_batch(name, []) == []


@every
def test_bm25_statistics_forget_deleted_points_at_once(
    bs: tuple[Backend, VectorStore], tmp_path: Path
) -> None:
    """After deletions, keyword scores are those of a collection that never held
    the deleted points (the engines keep counting a deleted point in every IDF
    until its segment is rewritten, unless its sparse vector is emptied first)."""
    b, store = bs
    points = _corpus(300, seed=4)
    name = _filled(b, store, points)
    store.delete(name, [p.id for p in points[::3]])
    store.delete_by_filter(name, PointFilter(paths=("src/f1.py", "web/f2.py")))
    kept = {pid for pid, _ in store.scroll(name)}
    fresh = EdgeStore(tmp_path / "fresh")
    fresh.create_collection("f", DIM)
    fresh.upsert("f", [p for p in points if p.id in kept])
    for _, sparse in _queries(6, 8):
        query = StoreQuery((Nearest("sparse", sparse, 400),), 400)
        same_ranking(store.query(name, query), fresh.query("f", query), rel=1e-5)
    fresh.close()


# -- maintenance -----------------------------------------------------------------------


@every
def test_info_optimize_and_flush(bs: tuple[Backend, VectorStore]) -> None:
    b, store = bs
    points = _corpus(80)
    name = _filled(b, store, points)
    store.delete(name, [p.id for p in points[:20]])
    query = StoreQuery((Nearest("dense", points[30].dense, 10),), 10)
    before = store.query(name, query)
    store.optimize(name)
    store.flush()
    assert [h.id for h in store.query(name, query)] == [h.id for h in before]
    info = store.info(name)
    assert info.name == name and info.points == 60
    if b.kind == "server-remote":
        assert info.disk_bytes is None  # the server's disk is not this machine's
    else:
        assert (info.disk_bytes is not None and info.disk_bytes > 0) or b.kind in (
            "server-memory",
            "server-tenant",  # a tenant's share of a collection's disk is unknown
        )


@persistent
def test_data_outlives_the_process(kind: str, tmp_path: Path) -> None:
    b = backend(kind, tmp_path)
    store = b.open()
    points = _corpus(50)
    name = _filled(b, store, points)
    store.delete(name, [points[0].id])
    store.close()
    again = b.open()
    try:
        assert name in again.list_collections()
        assert again.count(name) == 49
        hits = again.query(name, StoreQuery((Nearest("dense", points[7].dense, 1),), 1))
        assert hits[0].id == points[7].id
    finally:
        if kind == "server-remote":
            again.drop_collection(name)
        again.close()


# -- native aliases (server store) -------------------------------------------------------


@servers
def test_aliases_change_atomically(bs: tuple[Backend, VectorStore]) -> None:
    """Local mode keeps aliases too (in its folder), so this runs without a server."""
    b, store = bs
    assert isinstance(store, ServerStore)
    old, new, alias = b.name + "-a", b.name + "-b", b.name + "-live"
    store.create_collection(old, DIM)
    store.create_collection(new, DIM)
    store.upsert(new, _corpus(5))
    store.set_aliases({alias: old})
    assert store.resolve_alias(alias) == old
    assert store.count(alias) == 0  # an alias reads as its collection
    store.set_aliases({alias: new})
    assert store.resolve_alias(alias) == new
    assert store.count(alias) == 5
    store.set_aliases({}, remove=[alias])
    assert store.resolve_alias(alias) is None
    store.set_aliases({}, remove=[alias])  # removing an absent alias is harmless


# -- what only a real server has -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["server-memory", "server-local"])
def test_local_mode_has_no_snapshots(kind: str, tmp_path: Path) -> None:
    store = backend(kind, tmp_path).open()
    assert isinstance(store, ServerStore)
    store.create_collection("c", DIM)
    with pytest.raises(StoreError, match="Snapshots need a Qdrant server"):
        store.create_snapshot("c")
    store.close()


def test_snapshots_on_a_real_server(tmp_path: Path) -> None:
    require_remote()
    b = backend("server-remote", tmp_path)
    store = b.open()
    assert isinstance(store, ServerStore)
    restored = b.name + "-restored"
    try:
        points = _corpus(40)
        name = _filled(b, store, points)
        snap = store.create_snapshot(name)
        assert snap.name in {s.name for s in store.list_snapshots(name)}
        file = store.download_snapshot(name, snap, tmp_path / "backup.snapshot")
        assert file.stat().st_size == snap.size
        store.restore_snapshot(restored, file)
        assert store.count(restored) == 40
        query = StoreQuery((Nearest("dense", points[3].dense, 5),), 5)
        assert [h.id for h in store.query(restored, query)] == [
            h.id for h in store.query(name, query)
        ]
        store.delete_snapshot(name, snap.name)
        assert snap.name not in {s.name for s in store.list_snapshots(name)}
    finally:
        for n in (b.name, restored):
            if store.collection_exists(n):
                store.drop_collection(n)
        store.close()


def test_cluster_settings_reach_the_server(tmp_path: Path) -> None:
    require_remote()
    b = backend(
        "server-remote",
        tmp_path,
        shard_number=2,
        replication_factor=1,
        write_consistency_factor=1,
        hnsw_m=8,
        quantization="scalar",
    )
    store = b.open()
    assert isinstance(store, ServerStore)
    try:
        points = _corpus(30)
        name = _filled(b, store, points)
        assert store.cluster_settings(name) == {
            "shard_number": 2,
            "replication_factor": 1,
            "write_consistency_factor": 1,
        }
        hits = store.query(name, StoreQuery((Nearest("dense", points[2].dense, 3),), 3))
        assert hits[0].id == points[2].id
    finally:
        store.drop_collection(b.name)
        store.close()
