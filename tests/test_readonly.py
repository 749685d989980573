"""An index the user may read but not write: searches and status still answer.

The project is seen through a read-only bind mount, as a shared checkout or
a read-only volume would present it (as root, permission bits alone would
not stop writes).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import DEMO_PROJECT, run_cidx, write_files

ReadOnly = Callable[[Path], Path]


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[ReadOnly]:
    mounts: list[Path] = []

    def view(source: Path) -> Path:
        target = tmp_path / f"read-only-{len(mounts)}"
        target.mkdir()
        bind = subprocess.run(
            ["mount", "--bind", str(source), str(target)], capture_output=True, text=True
        )
        if bind.returncode != 0:
            pytest.skip(f"a read-only bind mount needs root here: {bind.stderr.strip()}")
        mounts.append(target)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True)
        return target

    yield view
    for target in reversed(mounts):
        subprocess.run(["umount", str(target)], check=False)


def test_a_read_only_index_answers_queries_and_status(tmp_path: Path, read_only: ReadOnly) -> None:
    proj = tmp_path / "proj"
    write_files(proj, DEMO_PROJECT)
    run_cidx(["index"], proj)
    before = sorted(p.relative_to(proj) for p in (proj / ".code-indexer").rglob("*"))
    view = read_only(proj)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch)}

    found = run_cidx(["query", "verify a token signature", "--json", "-n", "1"], view, env=env)
    assert found.results()[0]["path"] == "src/auth/tokens.py"
    assert "read-only for you" in found.stderr and "without syncing" in found.stderr

    status = run_cidx(["status", "--json"], view, env=env).json()
    assert status["read_only"] is True
    assert status["index_dir"] == str(view / ".code-indexer")
    assert status["points"] == status["chunks"] > 0
    human = run_cidx(["status"], view, env=env).stdout
    assert "read-only for you" in human

    for args in (["index"], ["init", "--force"], ["watch", "--no-wait"]):
        refused = run_cidx(args, view, env=env, check=False)
        assert refused.returncode == 9, (args, refused.stderr)
        assert "read-only for you" in refused.stderr and str(view) in refused.stderr
        assert "Traceback" not in refused.stderr

    # Nothing was left behind: no snapshot, nothing new in the index.
    assert list(scratch.glob("cidx-snapshot-*")) == []
    after = sorted(p.relative_to(proj) for p in (proj / ".code-indexer").rglob("*"))
    assert [p for p in after if p not in before and p.name != "cidx.log"] == []


def test_no_index_can_be_created_where_the_user_cannot_write(
    tmp_path: Path, read_only: ReadOnly
) -> None:
    proj = tmp_path / "proj"
    write_files(proj, DEMO_PROJECT)
    view = read_only(proj)
    out = run_cidx(["query", "retry"], view, check=False)
    assert out.returncode == 9 and "Traceback" not in out.stderr
    assert f"Cannot write the index of {view}" in out.stderr
    status = run_cidx(["status"], view, check=False)
    assert status.returncode == 10 and "no cidx index" in status.stderr
    assert not (proj / ".code-indexer").exists()
