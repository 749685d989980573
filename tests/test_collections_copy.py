"""Copying a collection from one store to another (`cidx.collections.copy_collection`).

Real Qdrant Edge stores in two folders, as a move between a project's own
store and the global store has them: every point arrives whole, a copy
stopped after any batch resumes from where it was told, and `verify_copy`
notices a copy that lost a point or changed one.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from cidx.collections import copy_collection, verify_copy
from cidx.sparse import SparseEncoder
from cidx.store import PointData
from cidx.store.edge import EdgeStore

DIM = 16
N = 50


def _points(seed: int = 3) -> list[PointData]:
    enc = SparseEncoder()
    rng = np.random.default_rng(seed)
    points = []
    for i in range(N):
        vec = rng.standard_normal(DIM).astype(np.float32)
        text = f"def handler_{i}(request): return retry upload number {i}"
        points.append(
            PointData(
                id=str(uuid.UUID(int=i + 1)),
                dense=(vec / np.linalg.norm(vec)).tolist(),
                sparse=enc.document(text),
                payload={"path": f"src/m{i}.py", "language": "python", "text": text},
            )
        )
    return points


def _stores(tmp_path: Path) -> tuple[EdgeStore, EdgeStore]:
    source, target = EdgeStore(tmp_path / "a"), EdgeStore(tmp_path / "b")
    source.create_collection("c", DIM)
    source.upsert("c", _points())
    source.flush()
    return source, target


def test_a_copy_holds_every_point_whole_and_verifies(tmp_path: Path) -> None:
    source, target = _stores(tmp_path)
    told: list[tuple[str | None, int]] = []
    copied = copy_collection(
        source, "c", target, "d", DIM, batch=7, on_batch=lambda nxt, n: told.append((nxt, n))
    )
    assert copied == N and target.count("d") == N
    assert [n for _, n in told] == [7, 14, 21, 28, 35, 42, 49, 50] and told[-1][0] is None
    mine, _ = source.page("c", limit=N)
    theirs, _ = target.page("d", limit=N)
    assert [(p.id, p.payload, p.sparse) for p in mine] == [
        (p.id, p.payload, p.sparse) for p in theirs
    ]
    assert all(np.allclose(a.dense, b.dense) for a, b in zip(mine, theirs, strict=True))
    assert verify_copy(source, "c", target, "d", samples=5) == []
    source.close()
    target.close()


def test_a_stopped_copy_resumes_from_the_last_batch_it_was_told(tmp_path: Path) -> None:
    source, target = _stores(tmp_path)
    seen: list[str | None] = []

    class Stop(Exception):
        pass

    def stop_after_three(following: str | None, copied: int) -> None:
        seen.append(following)
        if copied >= 30:
            raise Stop

    with pytest.raises(Stop):
        copy_collection(source, "c", target, "d", DIM, batch=10, on_batch=stop_after_three)
    assert target.count("d") == 30
    assert verify_copy(source, "c", target, "d") == [f"the copy holds 30 points, the original {N}"]
    # From the last offset it was told; the batch before it written again
    # changes nothing (points keep their ids).
    rest = copy_collection(source, "c", target, "d", DIM, start=seen[-2], batch=10)
    assert rest == N - 20 and target.count("d") == N
    assert verify_copy(source, "c", target, "d", samples=5) == []
    source.close()
    target.close()


def test_verify_notices_a_changed_point(tmp_path: Path) -> None:
    source, target = _stores(tmp_path)
    copy_collection(source, "c", target, "d", DIM)
    changed = [
        PointData(p.id, p.dense, p.sparse, {**p.payload, "text": "something else"})
        for p in _points()
    ]
    target.upsert("d", changed)
    problems = verify_copy(source, "c", target, "d", samples=3)
    assert problems and all("differs in the copy" in p for p in problems)
    source.close()
    target.close()
