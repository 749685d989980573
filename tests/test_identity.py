"""Project identity: one id however a remote is written, never a credential."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cidx.identity import (
    collection_name,
    git_remotes,
    normalize_remote,
    path_id,
    project_identity,
)


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Org/Repo.git",
        "https://github.com/Org/Repo",
        "https://github.com/Org/Repo/",
        "http://GitHub.com/Org/Repo.git",
        "https://user:s3cret-token@github.com/Org/Repo.git",
        "https://x-access-token:ghp_abc123@github.com:443/Org/Repo.git",
        "git@github.com:Org/Repo.git",
        "github.com:Org/Repo",
        "ssh://git@github.com/Org/Repo.git",
        "ssh://git@GITHUB.com:22/Org/Repo",
        "git+ssh://git@github.com/Org/Repo.git",
    ],
)
def test_every_way_of_writing_a_remote_gives_one_id(url: str) -> None:
    assert normalize_remote(url) == "github.com/Org/Repo"


def test_local_and_odd_remotes() -> None:
    assert normalize_remote("/srv/git/tools.git") == "file/srv/git/tools"
    assert normalize_remote("file:///srv/git/tools.git") == "file/srv/git/tools"
    assert normalize_remote("https://gitlab.example.org/group/sub/project.git") == (
        "gitlab.example.org/group/sub/project"
    )
    assert normalize_remote("") is None
    assert normalize_remote("https://github.com/") is None


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_remote_choice_and_credentials(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert project_identity(repo).source == "path"
    _git(repo, "remote", "add", "fork", "git@example.org:me/tool.git")
    assert project_identity(repo).id == "example.org/me/tool"
    _git(repo, "remote", "add", "upstream", "https://example.org/up/tool")
    assert project_identity(repo).id == "example.org/up/tool"
    _git(repo, "remote", "add", "origin", "https://bob:hunter2@Example.org/team/tool.git")
    who = project_identity(repo)
    assert (who.id, who.source, who.remote) == ("example.org/team/tool", "git-remote", "origin")
    assert "hunter2" not in repr(who) and "bob" not in repr(who)
    assert list(git_remotes(repo)) == ["fork", "upstream", "origin"]
    # A configured id wins over everything.
    assert project_identity(repo, "my-own-id").id == "my-own-id"


def test_a_worktree_has_its_repository_remote(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "remote", "add", "origin", "https://example.org/team/tool")
    (repo / "f.txt").write_text("x\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x")
    _git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "other")
    assert project_identity(tmp_path / "wt").id == "example.org/team/tool"


def test_path_ids_follow_the_canonical_path(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert path_id(real) == path_id(tmp_path / "link")
    assert path_id(real) != path_id(tmp_path)
    assert re.fullmatch(r"path-[0-9a-f]{16}", path_id(real))


def test_collection_names_are_portable_and_collision_free(tmp_path: Path) -> None:
    model = "all-MiniLM-L6-v2-int8@128"
    ids = ["my-repo", "my_repo", "My-Repo", "github.com/Org/Repo", "x" * 300, "CON", "a/../b"]
    names = [collection_name(i, model) for i in ids]
    assert len(set(names)) == len(names)
    for name in names:
        # Lowercase: folders on macOS and Windows ignore case.
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) and len(name) <= 100, name
    assert collection_name("my-repo", model) == collection_name("my-repo", model)
    # In a store shared by several projects, two clones of one remote differ.
    one, two = tmp_path / "one", tmp_path / "two"
    assert collection_name("github.com/o/r", model, place=one) != collection_name(
        "github.com/o/r", model, place=two
    )
