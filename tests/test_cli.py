"""The `cidx` command end to end: real processes, real files, real model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cidx.embedding import model_id
from tests.conftest import DEMO_PROJECT, run_cidx, write_files

PROJECT = DEMO_PROJECT


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write_files(root, PROJECT)
    return root


def test_first_query_initialises_indexes_and_answers(proj: Path) -> None:
    out = run_cidx(["query", "where do we retry failed uploads", "-n", "3"], proj)
    assert (proj / ".code-indexer" / "config.json").is_file()
    first = out.stdout.splitlines()[0]
    assert "src/uploads/retry.py:" in first and "retry_failed_uploads" in first
    assert "Indexed:" in out.stderr and "4 added" in out.stderr
    # The second run syncs silently: nothing changed.
    again = run_cidx(["query", "retry failed uploads", "-n", "1"], proj)
    assert "Synced" not in again.stderr and "Indexed" not in again.stderr


def test_query_from_a_subfolder_of_a_git_repo_uses_the_repo_root(proj: Path) -> None:
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    out = run_cidx(
        ["query", "verify a token signature", "--json", "-n", "1"], proj / "src" / "auth"
    )
    assert (proj / ".code-indexer").is_dir()
    assert not (proj / "src" / "auth" / ".code-indexer").exists()
    assert out.json()["results"][0]["path"] == "src/auth/tokens.py"


def test_json_results_have_the_documented_fields(proj: Path) -> None:
    answer = run_cidx(["query", "verify token", "--json"], proj).json()
    assert answer["query"] == "verify token" and answer["root"] == str(proj)
    results = answer["results"]
    assert isinstance(results, list) and results
    top = results[0]
    assert set(top) >= {"path", "start_line", "end_line", "score", "language", "symbol", "text"}
    assert top["path"] == "src/auth/tokens.py" and top["symbol"] == "verify_token"
    assert top["language"] == "python"
    lines = (proj / top["path"]).read_text().splitlines()[top["start_line"] - 1 : top["end_line"]]
    assert "\n".join(lines) == top["text"]


def test_batch_prints_one_json_line_per_query_in_order(proj: Path, tmp_path: Path) -> None:
    queries = ["retry failed uploads", "render the dashboard", "deployment behind load balancer"]
    qfile = tmp_path / "q.txt"
    qfile.write_text("\n".join(queries) + "\n")
    out = run_cidx(["query", "--batch", str(qfile), "--json", "--limit", "2"], proj)
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["query"] for a in answers] == queries
    assert all(len(a["results"]) == 2 for a in answers)
    assert answers[1]["results"][0]["path"] == "web/app.ts"
    assert answers[2]["results"][0]["path"] == "README.md"
    # stdin works too.
    stdin = run_cidx(["query", "--batch", "-", "--json"], proj, input="verify token\n")
    assert json.loads(stdin.stdout)["results"][0]["path"] == "src/auth/tokens.py"


def test_filters_and_modes(proj: Path) -> None:
    def paths(*args: str) -> list[str]:
        answer = run_cidx(["query", "function", "--json", *args], proj).json()
        return [r["path"] for r in answer["results"]]

    assert set(paths("--path", "*.ts")) == {"web/app.ts"}
    assert set(paths("--path", "src/")) <= {"src/uploads/retry.py", "src/auth/tokens.py"}
    assert set(paths("--lang", "md")) == {"README.md"}
    assert set(paths("--lang", "typescript", "--lang", "markdown")) <= {"web/app.ts", "README.md"}
    assert paths("--path", "nothing/*.go") == []
    for mode in ("hybrid", "semantic", "keyword"):
        top = run_cidx(["query", "verify_token", "--mode", mode, "--json", "-n", "1"], proj).json()
        assert top["results"][0]["symbol"] == "verify_token", mode


def test_min_score_drops_weak_results(proj: Path) -> None:
    everything = run_cidx(
        ["query", "retry failed uploads", "--json", "--mode", "semantic"], proj
    ).json()["results"]
    cut = everything[1]["score"]
    kept = run_cidx(
        ["query", "retry failed uploads", "--json", "--mode", "semantic", "--min-score", str(cut)],
        proj,
    ).json()["results"]
    assert kept and all(r["score"] >= cut for r in kept)
    assert len(kept) < len(everything)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query"], "Give the text to search for"),
        (["query", "   "], "Give the text to search for"),
        (["query", "x", "--mode", "fuzzy"], "--mode must be one of hybrid, semantic, keyword"),
        (["query", "x", "--limit", "0"], "--limit must be between 1"),
        (["query", "x", "--lang", "klingon"], "Unknown language 'klingon'"),
        (["query", "x", "--path", "\\"], "--path has a glob that cannot be used"),
        (["init", "--max-file-size", "lots"], "Cannot read the size 'lots'"),
        (["index", "/"], "'/' is outside the project"),
        (["index", "--clear", "src"], "--clear rebuilds the whole index"),
    ],
)
def test_bad_input_gets_a_clear_error(proj: Path, args: list[str], message: str) -> None:
    out = run_cidx(args, proj, check=False)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_config_is_named_with_the_next_step(proj: Path) -> None:
    run_cidx(["init"], proj)
    config = proj / ".code-indexer" / "config.json"
    config.write_text(
        config.read_text().replace('"max_file_size": 1048576', '"max_file_size": "big"')
    )
    out = run_cidx(["status"], proj, check=False)
    assert out.returncode == 3
    assert (
        str(config) in out.stderr
        and "max_file_size" in out.stderr
        and "cidx doctor --repair" in out.stderr  # tests/test_recovery.py runs it
    )


def test_init_options_and_force(proj: Path) -> None:
    created = run_cidx(["init", "--max-file-size", "2M", "--json"], proj).json()
    assert created["created"] and created["max_file_size"] == 2 * 1024 * 1024
    kept = run_cidx(["init", "--json"], proj).json()
    assert not kept["created"] and kept["collection"] == created["collection"]
    run_cidx(["index"], proj)
    replaced = run_cidx(["init", "--force", "--json"], proj).json()
    # The same project and model: the same name, now for an empty collection.
    assert replaced["replaced"] and replaced["collection"] == created["collection"]
    status = run_cidx(["status", "--json"], proj).json()
    assert status["files"] == 0 and status["points"] == 0
    assert status["pending"]["added"] == 4
    # The old collection is gone from disk.
    data = proj / ".code-indexer" / "qdrant-data"
    assert [p.name for p in data.iterdir()] == [replaced["collection"]]


def test_index_json_summary_and_status(proj: Path) -> None:
    summary = run_cidx(["index", "--json"], proj).json()
    assert summary["files_added"] == 4 and summary["files_changed"] == 4
    assert summary["chunks_embedded"] > 0 and summary["skipped"] == []
    (proj / "web" / "app.ts").write_text("export const x = 1;\n")
    (proj / "README.md").unlink()
    status = run_cidx(["status", "--json"], proj).json()
    assert status["pending"] == {"added": 0, "modified": 1, "deleted": 1}
    assert status["storage_mode"] == "local" and status["root"] == str(proj)
    assert status["points"] == status["chunks"] > 0 and status["files"] == 4
    assert status["storage_path"].startswith(str(proj / ".code-indexer" / "qdrant-data"))
    assert 0 < status["disk_bytes"] < 50 * 1024 * 1024
    assert status["model"] == model_id(128)
    # Paths, relative to the working folder, sync just those.
    part = run_cidx(["index", "../web", "typo.py", "--json"], proj / "src").json()
    assert part["scoped"] and (part["files_scanned"], part["files_modified"]) == (1, 1)
    assert [(w["path"], w["reason"]) for w in part["warnings"]] == [("src/typo.py", "not_found")]
    status = run_cidx(["status", "--json"], proj).json()
    assert status["pending"] == {"added": 0, "modified": 0, "deleted": 1}
    again = run_cidx(["index", "--json"], proj).json()
    assert (again["files_modified"], again["files_deleted"]) == (0, 1)
    assert not again["scoped"]
    human = run_cidx(["status"], proj).stdout
    assert "Changed since index  none" in human


def test_skipped_files_are_counted_and_listed(proj: Path) -> None:
    write_files(proj, {"big.log": "x" * 2_000_000, "image.dat": b"\x89PNG\x00\x00" * 10})
    out = run_cidx(["index"], proj)
    assert "2 skipped" in out.stdout
    verbose = run_cidx(["index", "--clear", "--verbose"], proj)
    assert "too_large: big.log" in verbose.stdout and "binary: image.dat" in verbose.stdout


def test_help_and_version() -> None:
    out = run_cidx(["--help"], Path.cwd())
    for command in ("init", "index", "query", "status"):
        assert command in out.stdout
    assert run_cidx(["--version"], Path.cwd()).stdout.startswith("cidx ")
