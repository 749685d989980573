"""A change of the config's naming scheme moves the project's collection to its new name.

Through the real path: `cidx config set naming_scheme …` (and an edit of the
config file) migrates the collection with dual writes while searches keep
answering, the old name staying an alias of the new one; in process, a
writer applying upserts and deletes throughout loses nothing.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from pathlib import Path

from cidx.config import collection_name_for, load_config
from cidx.dualwrite import PointWriter
from cidx.engine import Engine
from cidx.messages import ConfigSetRequest, QueryRequest
from cidx.owner.lock import OwnerLock
from cidx.project import ProjectPaths
from cidx.store import PointData, SparseVec
from tests.conftest import run_cidx, write_files

FILES = {
    "src/uploads.py": "def retry_failed_uploads(queue, attempts=3):\n"
    "    for item in queue.failed():\n        item.send(retries=attempts)\n",
    "src/auth.py": "def verify_token(token, secret):\n    return sign(token) == secret\n",
}


def _named(root: Path, scheme: str) -> str:
    config = load_config(ProjectPaths(root))
    return collection_name_for(
        config.storage_mode, config.identity.id, config.embedding.model_id, root, scheme
    )


def test_config_set_naming_scheme_migrates_the_collection_and_search_follows(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    write_files(root, FILES)
    run_cidx(["index"], root)
    old = load_config(ProjectPaths(root)).collection
    assert old == _named(root, "readable")

    report = run_cidx(["config", "set", "naming_scheme", "hashed", "--json"], root).json()
    new = _named(root, "hashed")
    assert new != old and "tool" not in new
    assert report["migration"]["phase"] == "done", report
    assert report["migration"]["started_by"] == "naming change"
    config = json.loads(ProjectPaths(root).config_file.read_text())
    assert config["naming_scheme"] == "hashed" and config["collection"] == new
    status = run_cidx(["status", "--json"], root).json()
    assert status["collection"] == new and status["points"] == status["chunks"] > 0
    hits = run_cidx(["query", "retry failed uploads", "--json", "-n", "1"], root).json()
    assert hits["results"][0]["symbol"] == "retry_failed_uploads"
    # The old name reaches the new collection.
    through = run_cidx(
        ["query", "retry failed uploads", "--json", "-n", "1", "--collection", old], root
    ).json()
    assert through["results"] == hits["results"]

    # The same value again changes nothing; a bad key or value is a clear error.
    again = run_cidx(["config", "set", "naming_scheme", "hashed", "--json"], root).json()
    assert again["migration"] is None
    bad = run_cidx(["config", "set", "naming_scheme", "pretty"], root, check=False)
    assert bad.returncode != 0 and "readable, hashed" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    other = run_cidx(["config", "set", "colour", "red"], root, check=False)
    assert other.returncode != 0 and "naming_scheme" in other.stderr, other.stderr


def test_an_edit_of_the_config_file_migrates_on_the_next_command(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    write_files(root, FILES)
    run_cidx(["index"], root)
    paths = ProjectPaths(root)
    config = json.loads(paths.config_file.read_text())
    config["naming_scheme"] = "hashed"
    paths.config_file.write_text(json.dumps(config))

    done = run_cidx(["index", "--json"], root)
    assert "naming scheme" in done.stderr, done.stderr
    hits = run_cidx(["query", "verify token", "--json", "-n", "1"], root).json()
    assert hits["results"][0]["symbol"] == "verify_token"
    assert run_cidx(["status", "--json"], root).json()["collection"] == _named(root, "hashed")
    # A collection the user named is not renamed by the scheme.
    run_cidx(["collections", "migrate", _named(root, "hashed"), "mine", "--json"], root)
    run_cidx(["collections", "migration", "cutover"], root)
    run_cidx(["collections", "migration", "cleanup", "--force"], root)
    assert json.loads(paths.config_file.read_text())["collection"] == "mine"
    run_cidx(["index"], root)
    assert json.loads(paths.config_file.read_text())["collection"] == "mine"


def _point(i: int, version: int) -> PointData:
    rng = random.Random(i * 7919 + version)
    terms = sorted(rng.sample(range(5000), 4))
    return PointData(
        str(uuid.UUID(int=0xABC << 64 | i)),
        [rng.uniform(-1, 1) for _ in range(384)],
        SparseVec(terms, [1.0] * 4),
        {"path": f"gen/f{i % 20}.py", "kind": "function", "text": f"v{version}"},
    )


def test_a_naming_scheme_change_under_a_writer_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    write_files(root, FILES)
    paths = ProjectPaths(root)
    with OwnerLock(paths, "test"):
        engine, _ = Engine.open(paths)
        try:
            engine.sync()
            old = engine.collection
            want: dict[str, PointData] = {
                pid: PointData(pid, [], SparseVec([], []), payload)
                for pid, payload in engine.store.scroll(old)
            }
            indexed = set(want)
            stop = threading.Event()
            report: dict[str, int] = {"ops": 0, "queries": 0, "empty": 0}
            errors: list[str] = []

            def write() -> None:
                rng = random.Random(3)
                while not stop.is_set() or report["ops"] < 400:
                    batch = {rng.randrange(300): report["ops"] + j for j in range(8)}
                    deletes = [i for i in batch if rng.random() < 0.3]
                    with engine.writing():
                        writer = PointWriter(engine.collections, engine.parts.models)
                        ups = [_point(i, v) for i, v in batch.items() if i not in deletes]
                        writer.upsert(old, ups)
                        writer.delete(old, [_point(i, 0).id for i in deletes])
                    want.update((p.id, p) for p in ups)
                    for i in deletes:
                        want.pop(_point(i, 0).id, None)
                    report["ops"] += len(batch)

            def read() -> None:
                while not stop.is_set():
                    try:
                        answer = engine.search_batch([QueryRequest("retry failed uploads")])
                        report["empty"] += not answer[0].results
                    except Exception as exc:  # counted, not raised in a thread
                        errors.append(repr(exc))
                    report["queries"] += 1

            threads = [threading.Thread(target=write), threading.Thread(target=read)]
            for t in threads:
                t.start()
            try:
                done = engine.set_setting(ConfigSetRequest("naming_scheme", "hashed"), print)
            finally:
                stop.set()
                for t in threads:
                    t.join()
            assert done.migration is not None and done.migration.phase == "done", done
            new = engine.collection
            assert new == _named(root, "hashed") != old
            assert not engine.store.collection_exists(old)
            assert engine.collections.resolve(old) == new
            assert errors == [] and report["empty"] == 0 and report["queries"] > 0, report
            got: dict[str, PointData] = {}
            offset: str | None = None
            while True:
                page, offset = engine.store.page(new, offset=offset, limit=500)
                got.update((p.id, p) for p in page)
                if offset is None:
                    break
            assert set(got) == set(want), (len(set(want) - set(got)), len(set(got) - set(want)))
            for pid, point in want.items():
                if pid not in indexed:
                    assert got[pid].payload == point.payload, pid
        finally:
            engine.close()
