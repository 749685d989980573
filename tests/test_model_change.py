"""An index built with another embedding model migrates to the bundled one, searchable throughout."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cidx.config import collection_name
from cidx.embedding import model_id
from cidx.project import ProjectPaths
from tests.conftest import run_cidx, write_files

FILES = {
    "src/uploads.py": "def retry_failed_uploads(queue, attempts=3):\n"
    "    for item in queue.failed():\n        item.send(retries=attempts)\n",
    "src/auth.py": "def verify_token(token, secret):\n    return sign(token) == secret\n",
}


def _pretend_built_with(root: Path, old_model: str) -> str:
    """Rewrite the index's config as an older cidx with another model left it."""
    paths = ProjectPaths(root)
    config = json.loads(paths.config_file.read_text())
    old_collection = collection_name(config["identity"]["id"], old_model)
    data = paths.index_dir / "qdrant-data"
    (data / config["collection"]).rename(data / old_collection)
    with sqlite3.connect(paths.state_db) as db:  # the manifest is kept per collection
        for table in ("files", "collection_meta"):
            db.execute(
                f"UPDATE {table} SET collection = ? WHERE collection = ?",
                (old_collection, config["collection"]),
            )
        # An alias left by an earlier identity move points at the old data.
        db.execute(
            "INSERT INTO aliases VALUES ('before-move', ?, 'test', 'an earlier move', 0, NULL)",
            (old_collection,),
        )
    config["embedding"]["model_id"] = old_model
    config["collection"] = old_collection
    paths.config_file.write_text(json.dumps(config))
    return old_collection


def test_an_index_of_another_model_is_migrated_with_a_note(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    write_files(root, FILES)
    run_cidx(["index"], root)
    old = _pretend_built_with(root, "all-MiniLM-L6-v2-int8@128")

    done = run_cidx(["index", "--json"], root)
    notes = [line for line in done.stderr.splitlines() if "embedding model" in line]
    assert len(notes) == 1, done.stderr
    assert "all-MiniLM-L6-v2-int8@128" in notes[0] and "migrating" in notes[0]
    summary = done.json()
    # Re-embedded from the stored points (a migration), not re-indexed from the files.
    assert summary["files_added"] == 0 and summary["files_unchanged"] == 2, summary

    paths = ProjectPaths(root)
    config = json.loads(paths.config_file.read_text())
    assert config["embedding"]["model_id"] == model_id(128)
    assert not (
        paths.index_dir / "qdrant-data" / old
    ).exists()  # no vectors of two models side by side
    status = run_cidx(["status", "--json"], root).json()
    assert status["model"] == model_id(128) and status["points"] == status["chunks"] > 0
    results = run_cidx(["query", "retry failed uploads", "--json", "-n", "1"], root).json()[
        "results"
    ]
    assert results[0]["symbol"] == "retry_failed_uploads"
    # The old alias follows the data to the new model's collection.
    through = run_cidx(
        ["query", "retry failed uploads", "--json", "-n", "1", "--collection", "before-move"], root
    ).json()["results"]
    assert through == results

    again = run_cidx(["index"], root)
    assert "embedding model" not in again.stderr  # once only


def test_search_answers_while_a_model_migration_is_stopped_part_way(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    write_files(root, FILES)
    run_cidx(["index"], root)
    _pretend_built_with(root, "all-MiniLM-L6-v2-int8@128")
    killed = run_cidx(["index"], root, env={"CIDX_FAILPOINT": "migration_prepared"}, check=False)
    assert killed.returncode == -9, killed.stderr

    status = run_cidx(["collections", "migration", "status", "--json"], root).json()
    assert status["migration"]["started_by"] == "model change", status
    # Searches answer meanwhile, from the old vectors by keywords (the old model
    # cannot run), and say so. The backfill fails here, so it is still under way.
    stuck = {"CIDX_FAILPOINT_RAISE": "backfill_batch:1000"}
    answer = run_cidx(["query", "retry_failed_uploads", "--json", "-n", "1"], root, env=stuck)
    assert answer.json()["results"][0]["symbol"] == "retry_failed_uploads"
    assert "keywords only" in answer.stderr, answer.stderr

    run_cidx(["index"], root)
    config = json.loads(ProjectPaths(root).config_file.read_text())
    assert config["embedding"]["model_id"] == model_id(128)
    status = run_cidx(["collections", "migration", "status", "--json"], root).json()
    assert status["migration"]["phase"] == "done", status
    results = run_cidx(["query", "retry failed uploads", "--json", "-n", "1"], root).json()
    assert results["results"][0]["symbol"] == "retry_failed_uploads"
