"""Collection migrations through the CLI and the owner: a real project, the real model.

`cidx collections migrate` while `cidx watch` applies edits (re-embedding for
a second model: the bundled one with another max length), and the copy
migration's status, cutover and rollback as a user runs them.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from pathlib import Path

from cidx.embedding import Embedder, model_id
from cidx.messages import QueryRequest, SearchRequest
from cidx.owner import protocol
from cidx.project import ProjectPaths
from cidx.representation import dense_text_of
from tests.conftest import run_cidx, write_files
from tests.helpers import clean_rebuild, full_snapshot, generated_module, opened
from tests.test_watch import Watcher

SECOND_MODEL = model_id(64)
REEMBED = ("--reembed", SECOND_MODEL)


def _project(root: Path, files: int = 24) -> None:
    root.mkdir()
    write_files(root, {f"pkg/mod{i}.py": generated_module(i) for i in range(files)})
    write_files(root, {"src/uploads.py": "def retry_failed_uploads(queue):\n    queue.retry()\n"})
    run_cidx(["index"], root)


def _collection(root: Path) -> str:
    return str(run_cidx(["status", "--json"], root).json()["collection"])


def test_a_reembed_migration_while_watch_applies_edits(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    _project(root, files=12)
    source = _collection(root)
    watcher = Watcher(root)
    stop = threading.Event()
    problems: list[str] = []
    answered = 0

    def edit_and_query() -> None:
        nonlocal answered
        rng = random.Random(3)
        n = 0
        request = SearchRequest([QueryRequest("retry failed uploads", limit=3)], sync=False)
        while not stop.is_set():
            n += 1
            target = root / "pkg" / f"mod{rng.randrange(40)}.py"
            if target.exists() and rng.random() < 0.25:
                target.unlink()
            else:
                target.write_text(generated_module(1000 + n))
            try:
                outcome = watcher.client.call(protocol.SEARCH, request)
                if not outcome.answers[0].results:
                    problems.append("an empty answer")
                answered += 1
            except Exception as exc:
                problems.append(repr(exc))
            time.sleep(0.2)  # an editor's pace, not a flood

    editor = threading.Thread(target=edit_and_query)
    editor.start()
    try:
        started = run_cidx(
            ["collections", "migrate", source, "emb64", *REEMBED, "--batch", "16", "--json"],
            root,
        ).json()
        time.sleep(0.5)  # edits go on after the backfill, through the dual writes
    finally:
        stop.set()
        editor.join()
    assert started["migration"]["phase"] == "validated", started
    assert problems == [] and answered > 0, problems
    watcher.settle()
    cut = run_cidx(["collections", "migration", "cutover", "--json"], root).json()
    assert cut["migration"]["reads"] == "emb64"
    (root / "pkg" / "mod0.py").write_text(generated_module(5000))  # written to both sides
    watcher.settle()
    done = run_cidx(["collections", "migration", "cleanup", "--force", "--json"], root).json()
    assert done["migration"]["phase"] == "done"
    assert watcher.stop() == 0, watcher.log.read_text()

    config = json.loads(ProjectPaths(root).config_file.read_text())
    assert config["embedding"]["model_id"] == SECOND_MODEL and config["collection"] == "emb64"
    # Every chunk of the files as they are now, nothing lost, nothing come back.
    assert full_snapshot(root) == clean_rebuild(root, tmp_path)
    with opened(root) as engine:
        points, _next = engine.store.page("emb64", limit=3)
        assert not engine.store.collection_exists(source)
    want = Embedder(64).embed([dense_text_of(p.payload) for p in points])
    for point, vector in zip(points, want, strict=True):
        assert math.isclose(
            sum(a * float(b) for a, b in zip(point.dense, vector, strict=True)), 1.0, abs_tol=1e-3
        )


def test_copy_migration_status_cutover_and_rollback_from_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    _project(root, files=6)
    source = _collection(root)
    before = run_cidx(["query", "retry failed uploads", "--json", "-n", "3"], root).json()
    run_cidx(["collections", "migrate", source, "copy1", "--batch", "4"], root)

    status = run_cidx(["status", "--json"], root).json()
    assert status["migration"]["phase"] == "validated" and status["migration"]["reads"] == source
    assert "copy1: validated" in run_cidx(["status"], root).stdout

    run_cidx(["collections", "migration", "cutover"], root)
    after = run_cidx(["query", "retry failed uploads", "--json", "-n", "3"], root).json()
    assert after["results"] == before["results"]
    (root / "src" / "late.py").write_text("def handle_late_payment(invoice):\n    return 1\n")
    run_cidx(["index"], root)  # a write after cutover: reaches SOURCE too

    refused = run_cidx(["collections", "migration", "cleanup"], root, check=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
    back = run_cidx(["collections", "migration", "rollback", "--json"], root).json()
    assert back["migration"]["phase"] == "rolled_back" and back["migration"]["reads"] == source
    late = run_cidx(["query", "handle late payment", "--json", "-n", "1"], root).json()
    assert late["results"][0]["symbol"] == "handle_late_payment"
    assert _collection(root) == source
    assert full_snapshot(root) == clean_rebuild(root, tmp_path)


def test_metrics_export_a_running_migration(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    _project(root, files=3)
    source = _collection(root)
    with opened(root) as engine:
        engine.migrator.start(source, "m2", batch=2)
        engine.migrator.run()
        engine.metrics.refresh()
        assert engine.metrics.migration_active.current() == 1.0
        copied = engine.metrics.migration_copied.current()
        assert copied == engine.metrics.migration_total.current() == engine.store.count(source)
        assert engine.metrics.migration_queued.current() == 0.0


def test_bad_input_gets_a_clear_error_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run_cidx(["collections", "migrate", "a", "b"], empty, check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "cidx index" in refused.stderr and not (empty / ".code-indexer").exists()
    root = tmp_path / "proj"
    _project(root, files=1)
    for args, says in [
        (["collections", "migrate", "nope", "x"], "no collection 'nope'"),
        (["collections", "migrate", _collection(root), "bad/name"], "cannot be a collection name"),
        (["collections", "migrate", _collection(root), "x", "--retain", "soon"], "--retain"),
        (["collections", "migration", "cutover"], "No collection migration is under way"),
    ]:
        result = run_cidx(args, root, check=False)
        assert result.returncode != 0 and says in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
