"""Project identity and aliases, through the real CLI: a project gains a remote, its
data moves to the new name, the old name keeps working until its alias is removed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.helpers import full_snapshot, opened

SECRET = "s3cretTOKEN42"
REMOTE = f"https://alice:{SECRET}@Example.org/team/tool.git"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "tool"
    write_files(root, DEMO_PROJECT)
    _git(root, "init", "-q")
    run_cidx(["index"], root)
    return root


def _top(root: Path, *args: str) -> list[tuple[str, float]]:
    out = run_cidx(["query", "verify a token signature", "--json", "--no-sync", *args], root)
    return [(r["path"], r["score"]) for r in out.results()]


def test_a_remote_moves_the_data_and_the_old_name_keeps_working(repo: Path) -> None:
    outputs: list[str] = []
    info = run_cidx(["project", "info", "--json"], repo).json()
    assert info["source"] == "path" and not info["changed"] and info["aliases"] == []
    old = info["collection"]
    before = _top(repo)

    _git(repo, "remote", "add", "origin", REMOTE)
    status = run_cidx(["status"], repo)
    outputs.append(status.stdout)
    assert "the git remote now says example.org/team/tool" in status.stdout
    assert "cidx project update-remote" in status.stdout

    dry = run_cidx(["project", "update-remote", "--dry-run", "--json"], repo).json()
    assert dry["status"] == "planned" and dry["new_id"] == "example.org/team/tool"
    new = dry["moves"][0]["new"]
    assert dry["moves"] == [{"old": old, "new": new}] and new != old
    assert run_cidx(["project", "info", "--json"], repo).json()["collection"] == old

    # Not at a terminal, it asks for --yes instead of guessing.
    refused = run_cidx(["project", "update-remote"], repo, check=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    done = run_cidx(["project", "update-remote", "--yes"], repo)
    outputs += [done.stdout, done.stderr]
    assert f"{old} → {new}" in done.stdout

    info = run_cidx(["project", "info", "--json"], repo).json()
    assert (info["id"], info["source"], info["collection"]) == (
        "example.org/team/tool",
        "git-remote",
        new,
    )
    assert [(a["name"], a["target"]) for a in info["aliases"]] == [(old, new)]
    assert info["aliases"][0]["created_by"] == "cidx project update-remote"
    assert (repo / ".code-indexer" / "qdrant-data" / new).is_dir()
    assert not (repo / ".code-indexer" / "qdrant-data" / old).exists()

    # The new name, the old one through its alias, and the default all answer alike,
    # in this process and the next.
    assert _top(repo) == _top(repo, "--collection", new) == _top(repo, "--collection", old)
    assert _top(repo) == before
    listed = json.loads(run_cidx(["project", "list-aliases", "--format", "json"], repo).stdout)
    assert listed[0]["name"] == old and listed[0]["last_used_at"] is not None
    simple = run_cidx(["project", "list-aliases", "--format", "simple"], repo).stdout
    assert simple.strip() == f"{old} {new}"

    removed = run_cidx(["project", "remove-alias", old, "--force"], repo)
    outputs.append(removed.stdout)
    gone = run_cidx(["query", "token", "--collection", old], repo, check=False)
    assert gone.returncode == 2 and f"no collection or alias {old!r}" in gone.stderr
    again = run_cidx(["project", "update-remote", "--yes"], repo)
    assert "Nothing to move" in again.stdout

    # The credential is in no name, file, log or output.
    for text in outputs:
        assert SECRET not in text and "alice" not in text
    for path in (repo / ".code-indexer").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and b"alice" not in data, path


def test_aliases_made_by_hand_follow_the_rules(repo: Path) -> None:
    collection = run_cidx(["project", "info", "--json"], repo).json()["collection"]
    made = run_cidx(["collections", "alias", "create", "stable", collection, "--json"], repo)
    assert made.json()["target"] == collection and made.json()["created_by"] == "user"
    assert _top(repo, "--collection", "stable") == _top(repo)
    for args, words in (
        (["collections", "alias", "create", "chained", "stable"], "is itself an alias"),
        (["collections", "alias", "create", collection, "stable"], "is itself an alias"),
        (["collections", "alias", "create", "x", "no-such-collection"], "no collection"),
        (["collections", "alias", "create", "bad name!", collection], "cannot be a alias"),
        (["collections", "alias", "create", "stable", collection], "already an alias"),
        (["collections", "alias", "delete", collection], "is a collection, not an alias"),
        (["collections", "alias", "delete", "nothing"], "There is no alias"),
    ):
        out = run_cidx(args, repo, check=False)
        assert out.returncode == 2 and words in out.stderr, (args, out.stderr)
    run_cidx(["collections", "alias", "delete", "stable"], repo)
    assert run_cidx(["project", "list-aliases"], repo).stdout.strip() == "No aliases."


def test_aliases_are_counted_for_metrics(repo: Path) -> None:
    from cidx.messages import QueryRequest

    with opened(repo) as engine:
        engine.collections.create_alias(
            "old-name", engine.collection, created_by="test", reason="metrics"
        )
        engine.search_batch([QueryRequest("token")], "old-name")
        engine.search_batch([QueryRequest("token")], "old-name")
        engine.search_batch([QueryRequest("token")])
        assert engine.metrics.alias_resolutions.current() == {"old-name": 2}


def test_doctor_finds_an_alias_whose_collection_is_gone(repo: Path) -> None:
    with opened(repo) as engine:
        engine.collections.ensure("cidx-extra")
        engine.collections.create_alias("extra", "cidx-extra", created_by="test", reason="doctor")
        engine.collections.drop("cidx-extra")
    report = run_cidx(["doctor", "--json"], repo, check=False)
    aliases = next(c for c in report.json()["checks"] if c["name"] == "aliases")
    assert aliases["status"] == "problem" and "extra → cidx-extra" in aliases["detail"]
    # The advised step works, and the index is healthy again.
    assert aliases["next_step"] == "run `cidx project remove-alias extra` for each"
    run_cidx(["project", "remove-alias", "extra", "--force"], repo)
    assert run_cidx(["doctor", "--json"], repo).json()["healthy"]


@pytest.mark.parametrize(
    "step",
    [
        "identity_after_intent",
        "identity_after_rename",
        "identity_after_alias",
        "identity_after_config",
    ],
)
@pytest.mark.parametrize("resume", ["update-remote", "query"])
def test_a_move_killed_at_any_step_converges(repo: Path, step: str, resume: str) -> None:
    snapshot = full_snapshot(repo)
    _git(repo, "remote", "add", "origin", "git@example.org:team/tool.git")
    killed = run_cidx(
        ["project", "update-remote", "--yes"], repo, check=False, env={"CIDX_FAILPOINT": step}
    )
    assert killed.returncode == -9, killed.stderr
    if resume == "update-remote":
        run_cidx(["project", "update-remote", "--yes"], repo)
    else:
        run_cidx(["query", "token", "--no-sync"], repo)  # any command finishes the move
    info = run_cidx(["project", "info", "--json"], repo).json()
    assert info["id"] == "example.org/team/tool" and not info["changed"]
    assert [a["target"] for a in info["aliases"]] == [info["collection"]]
    assert not (repo / ".code-indexer" / "identity-move.json").exists()
    assert full_snapshot(repo) == snapshot
    summary = run_cidx(["index", "--json"], repo).json()
    assert summary["chunks_embedded"] == 0 and summary["files_added"] == 0
