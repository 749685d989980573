"""Identity and aliases of projects in global storage mode, through the real CLI.

In the global store a project's aliases are kept in its state database and
in the store's registry: `cidx project update-remote` moves the data to the
new name in the shared store, registers it, and leaves an alias old → new
in both places; a SIGKILL at each step followed by a re-run converges.
`cidx doctor` reports an alias recorded in one place only and `--repair`
records it in both, removing none. The registry gained its aliases table
through a numbered migration, tested on a stored version-1 registry.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from cidx.registry import Registry
from cidx.state import Alias
from cidx.userdirs import data_dir
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.helpers import full_snapshot, opened, registry_rows
from tests.test_project_identity import _git

DATA = Path(__file__).parent / "data"
REMOTE = "git@example.org:team/tool.git"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "tool"
    write_files(root, DEMO_PROJECT)
    _git(root, "init", "-q")
    run_cidx(["init", "--storage", "global"], root)
    run_cidx(["index"], root)
    return root


def _store() -> Path:
    return data_dir() / "qdrant-data"


def _top(root: Path, *args: str) -> list[tuple[str, float]]:
    out = run_cidx(["query", "verify a token signature", "--json", "--no-sync", *args], root)
    return [(r["path"], r["score"]) for r in out.results()]


def _registered() -> dict[str, str]:
    """Each collection of the registry → its project's root."""
    return {str(r[0]): str(r[1]) for r in registry_rows("collections")}


def _registry_aliases() -> list[tuple[str, str, str]]:
    """(project root, alias, target) of every alias the registry records."""
    return sorted((str(r[0]), str(r[1]), str(r[2])) for r in registry_rows("aliases"))


def test_a_version_1_registry_is_brought_forward() -> None:
    path = data_dir() / "registry.db"
    path.parent.mkdir(parents=True)
    shutil.copy(DATA / "registry-v1.db", path)
    with Registry() as registry:
        (entry,) = registry.entries()
        assert (entry.project_root, entry.project_id, entry.state) == (
            "/home/u/proj",
            "path-0123456789abcdef",
            "ready",
        )
        assert [m.id for m in registry.migrations()] == ["mig-1"]
        assert registry.aliases(Path("/home/u/proj")) == []
        alias = Alias("old", entry.name, "user", "kept", 1.0, None)
        registry.set_aliases(Path("/home/u/proj"), [alias])
        assert registry.aliases(Path("/home/u/proj")) == [alias]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        conn.close()


def test_update_remote_moves_the_data_in_the_global_store(repo: Path) -> None:
    old = run_cidx(["project", "info", "--json"], repo).json()["collection"]
    before = _top(repo)
    assert _registered() == {old: str(repo)}

    _git(repo, "remote", "add", "origin", REMOTE)
    done = run_cidx(["project", "update-remote", "--yes", "--json"], repo).json()
    assert done["status"] == "done"
    new = done["moves"][0]["new"]
    assert new != old and (_store() / new / "edge_config.json").is_file()
    assert not (_store() / old).exists()
    assert _registered() == {new: str(repo)}
    assert _registry_aliases() == [(str(repo), old, new)]

    # The new name, the old one through its alias, and the default answer alike.
    assert _top(repo) == _top(repo, "--collection", new) == _top(repo, "--collection", old)
    assert _top(repo) == before
    assert run_cidx(["doctor", "--json"], repo).json()["healthy"]

    run_cidx(["project", "remove-alias", old, "--force"], repo)
    assert _registry_aliases() == []
    gone = run_cidx(["query", "token", "--collection", old], repo, check=False)
    assert gone.returncode == 2 and f"no collection or alias {old!r}" in gone.stderr


@pytest.mark.parametrize(
    "step",
    [
        "identity_after_intent",
        "identity_after_rename",
        "identity_after_alias",
        "identity_after_registry",
        "identity_after_config",
    ],
)
def test_update_remote_killed_at_any_step_converges(repo: Path, step: str) -> None:
    snapshot = full_snapshot(repo)
    old = run_cidx(["project", "info", "--json"], repo).json()["collection"]
    _git(repo, "remote", "add", "origin", REMOTE)
    killed = run_cidx(
        ["project", "update-remote", "--yes"], repo, check=False, env={"CIDX_FAILPOINT": step}
    )
    assert killed.returncode == -9, killed.stderr
    run_cidx(["project", "update-remote", "--yes"], repo)

    info = run_cidx(["project", "info", "--json"], repo).json()
    new = info["collection"]
    assert info["id"] == "example.org/team/tool" and not info["changed"]
    assert [(a["name"], a["target"]) for a in info["aliases"]] == [(old, new)]
    assert _registered() == {new: str(repo)}
    assert _registry_aliases() == [(str(repo), old, new)]
    assert not (repo / ".code-indexer" / "identity-move.json").exists()
    assert full_snapshot(repo) == snapshot
    summary = run_cidx(["index", "--json"], repo).json()
    assert summary["chunks_embedded"] == 0 and summary["files_added"] == 0


def test_doctor_finds_and_repairs_an_alias_in_one_place_only(repo: Path) -> None:
    with opened(repo) as engine:
        collection = engine.collection
        # Made below the layer that mirrors aliases: in the state database only.
        engine.collections.create_alias("stable", collection, created_by="test", reason="drift")
    with Registry() as registry:
        stray = Alias("legacy-name", collection, "user", "made elsewhere", 1.0, None)
        registry.set_aliases(repo, [stray])

    report = run_cidx(["doctor", "--json"], repo, check=False)
    assert report.returncode != 0
    check = next(c for c in report.json()["checks"] if c["name"] == "alias-registry")
    assert check["status"] == "problem"
    assert "in the state database only: stable" in check["detail"]
    assert "in the registry only: legacy-name" in check["detail"]
    # The advised step works, and removes nothing.
    assert check["next_step"].startswith("run `cidx doctor --repair`")
    repaired = run_cidx(["doctor", "--repair", "--json"], repo).json()
    assert repaired["healthy"]
    assert _registry_aliases() == [
        (str(repo), "legacy-name", collection),
        (str(repo), "stable", collection),
    ]
    names = run_cidx(["project", "list-aliases", "--format", "simple"], repo).stdout.split()
    assert names == ["legacy-name", collection, "stable", collection]
    assert _top(repo, "--collection", "legacy-name") == _top(repo)


def test_aliases_made_by_hand_are_mirrored_and_follow_a_move(repo: Path, tmp_path: Path) -> None:
    collection = run_cidx(["project", "info", "--json"], repo).json()["collection"]
    run_cidx(["collections", "alias", "create", "stable", collection], repo)
    assert _registry_aliases() == [(str(repo), "stable", collection)]
    moved = tmp_path / "moved"
    repo.rename(moved)
    assert _top(moved, "--collection", "stable") == _top(moved)
    assert _registry_aliases() == [(str(moved), "stable", collection)]
    assert run_cidx(["doctor", "--json"], moved).json()["healthy"]
    run_cidx(["collections", "alias", "delete", "stable"], moved)
    assert _registry_aliases() == []
