"""Backups of the global store (`cidx backup --global`) and of projects in
global storage mode, through the real CLI: round trips into another user's
data folder and back into the same one; damaged and hostile archives of the
global store refused with the store untouched; a restore killed midway.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import tarfile
from pathlib import Path
from typing import Any

import pytest

from cidx.errors import ExitCode
from cidx.project import ProjectPaths
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.helpers import registry_rows
from tests.test_backup import _entry, _file, answers, forge, status

OTHER = {
    "src/billing/invoice.py": '''
        def total_invoice(lines, tax_rate):
            """Sum the invoice lines and add the tax."""
            return sum(line.amount for line in lines) * (1 + tax_rate)
        ''',
    "docs/setup.md": "# Setup\n\nInstall the package and start the worker.\n",
}


@pytest.fixture
def projects(tmp_path: Path) -> list[Path]:
    """Two indexed projects in global storage mode, in this test's data folder."""
    roots = []
    for name, files in (("alpha", DEMO_PROJECT), ("beta", OTHER)):
        root = tmp_path / name
        write_files(root, files)
        run_cidx(["init", "--storage", "global"], root)
        run_cidx(["index"], root)
        roots.append(root)
    return roots


def store_bytes(data: Path | None = None) -> dict[str, str]:
    """sha256 of every file of the global store and its registry (not backups,
    nor what a killed restore left, which the next one removes)."""
    folder = data or Path(os.environ["CIDX_DATA_DIR"])
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not rel.startswith(("backups/", ".")):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def global_backup(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    made: dict[str, Any] = run_cidx(["backup", "--global", "--json", *args], cwd, env=env).json()
    return made


def test_global_store_restores_into_another_data_folder(
    projects: list[Path], tmp_path: Path
) -> None:
    before = {root: (answers(root), _status(root)) for root in projects}
    made = global_backup(tmp_path, "--output", str(tmp_path / "b"))
    assert made["kind"] == "global" and len(made["collections"]) == 2
    assert made["points"] == sum(s["points"] for _, s in before.values())
    listed = run_cidx(["backup", "list", str(tmp_path / "b"), "--json"], tmp_path).json()
    assert listed["backups"][0]["kind"] == "global"
    assert run_cidx(["backup", "verify", made["archive"]], tmp_path).returncode == 0

    # Another user's data folder: the kind is found in the archive.
    other = {"CIDX_DATA_DIR": str(tmp_path / "other-data")}
    done = run_cidx(["restore", made["archive"], "--json"], tmp_path, env=other).json()
    assert done["kind"] == "global" and done["replaced"] is False
    assert done["index_dir"] == str(tmp_path / "other-data" / "qdrant-data")
    for root in projects:
        assert answers(root, other) == before[root][0]
        assert _status(root, other) == before[root][1]
    assert {row[1] for row in _rows(tmp_path / "other-data")} == {str(p) for p in projects}
    assert not list((tmp_path / "other-data").glob(".*.tmp"))

    # Into this user's own store: only with --force, which the refusal names.
    refused = run_cidx(["restore", made["archive"], "--global"], tmp_path, check=False)
    assert refused.returncode == ExitCode.USAGE
    assert f"`cidx restore {made['archive']} --force`" in refused.stderr
    write_files(projects[0], {"src/later.py": "def added_later():\n    return 3\n"})
    run_cidx(["index"], projects[0])
    assert answers(projects[0]) != before[projects[0]][0]
    run_cidx(["restore", made["archive"], "--force"], tmp_path)
    (projects[0] / "src/later.py").unlink()
    for root in projects:
        assert answers(root) == before[root][0]
    # A project archive is not a global one, and the reverse.
    project_archive = run_cidx(["backup", "--json"], projects[1]).json()["archive"]
    wrong = run_cidx(["restore", project_archive, "--global"], tmp_path, check=False)
    assert wrong.returncode == ExitCode.USAGE and "without --global" in wrong.stderr
    wrong = run_cidx(
        ["restore", made["archive"], "--into", str(projects[0])], tmp_path, check=False
    )
    assert wrong.returncode == ExitCode.USAGE and "without --into" in wrong.stderr


def _status(root: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`cidx status`, without when the project last caught up: each query of a
    project does (its state is in the project, whichever store it uses)."""
    return {k: v for k, v in status(root, env).items() if not k.startswith("last_index")}


def _rows(data: Path) -> list[tuple[Any, ...]]:
    import sqlite3

    conn = sqlite3.connect(data / "registry.db")
    try:
        return list(conn.execute("SELECT * FROM collections").fetchall())
    finally:
        conn.close()


def test_no_global_store_to_back_up(tmp_path: Path) -> None:
    result = run_cidx(["backup", "--global"], tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE
    assert "There is no global store" in result.stderr


def test_a_global_mode_project_backs_up_and_restores(projects: list[Path], tmp_path: Path) -> None:
    root = projects[0]
    before_answers = answers(root)
    made = run_cidx(["backup", "--json", "--output", str(tmp_path / "b")], root).json()
    archive = made["archive"]
    collection = made["collections"][0]["name"]
    store = Path(os.environ["CIDX_DATA_DIR"]) / "qdrant-data"

    # Changed, then restored in place: back into the global store, registered.
    (root / "src/uploads/retry.py").unlink()
    run_cidx(["index"], root)
    assert answers(root) != before_answers
    refused = run_cidx(["restore", archive], root, check=False)
    assert refused.returncode == ExitCode.USAGE and "--force" in refused.stderr
    done = run_cidx(["restore", archive, "--force", "--json"], root).json()
    assert done["storage_mode"] == "global" and done["converted"] is False
    write_files(root, {"src/uploads/retry.py": DEMO_PROJECT["src/uploads/retry.py"]})
    assert answers(root) == before_answers
    assert (store / collection).is_dir() and not ProjectPaths(root).qdrant_dir.exists()
    assert [r[1] for r in registry_rows("collections") if r[0] == collection] == [str(root)]
    assert not list(root.glob(".code-indexer.*")) and not list(store.parent.glob(".*.tmp"))

    # A clean registry: the project registers again from its backup.
    (store.parent / "registry.db").unlink()
    for extra in store.parent.glob("registry.db-*"):
        extra.unlink()
    run_cidx(["restore", archive, "--force"], root)
    assert [r[1] for r in registry_rows("collections")] == [str(root)]
    assert answers(root) == before_answers

    # Elsewhere, while the original still uses its collection: a local-mode
    # index of its own, which the advised command moves into the global store.
    checkout = tmp_path / "checkout"
    write_files(checkout, DEMO_PROJECT)
    done = run_cidx(["restore", archive, "--into", str(checkout), "--json"], tmp_path).json()
    assert done["storage_mode"] == "local" and done["converted"] is True
    assert status(checkout)["storage_mode"] == "local"
    human = run_cidx(["restore", archive, "--into", str(checkout), "--force"], tmp_path).stdout
    assert "`cidx init --storage global` moves it" in human
    run_cidx(["index"], checkout)
    assert answers(checkout) == before_answers
    run_cidx(["init", "--storage", "global"], checkout)
    assert status(checkout)["storage_mode"] == "global"
    assert answers(checkout) == before_answers
    assert answers(root) == before_answers


def test_damaged_and_hostile_global_archives_leave_the_store(
    projects: list[Path], tmp_path: Path
) -> None:
    good = Path(global_backup(tmp_path, "--output", str(tmp_path / "g.tar.zst"))["archive"])
    data = good.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    (tmp_path / "flipped.tar.zst").write_bytes(bytes(flipped))
    (tmp_path / "cut.tar.zst").write_bytes(data[: len(data) * 2 // 3])
    name = json.loads(run_cidx(["backup", "verify", str(good), "--json"], tmp_path).stdout)["info"][
        "collections"
    ][0]["name"]
    inside = f"collections/{name}"
    cases = [
        (tmp_path / "flipped.tar.zst", "damaged"),
        (tmp_path / "cut.tar.zst", "damaged"),
        (
            forge(
                good, tmp_path / "l.tar.zst", extra=[_entry(f"{inside}/x", tarfile.SYMTYPE, "/")]
            ),
            "symbolic link",
        ),
        (forge(good, tmp_path / "t.tar.zst", extra=[_file("../evil", b"x")]), "is not valid"),
        # A project's members have no place in a backup of the global store.
        (forge(good, tmp_path / "c.tar.zst", extra=[_file("index/config.json", b"{}")]), "valid"),
    ]
    before_answers = [answers(root) for root in projects]
    before = store_bytes()
    for bad, expect in cases:
        result = run_cidx(["restore", str(bad), "--force"], tmp_path, check=False)
        assert result.returncode == ExitCode.ARCHIVE, result.stderr
        assert expect in result.stderr
        assert store_bytes() == before
        assert not list(Path(os.environ["CIDX_DATA_DIR"]).glob(".*.tmp"))
        assert not (tmp_path.parent / "evil").exists()
    assert [answers(root) for root in projects] == before_answers


def test_killed_global_restore_leaves_the_old_store(projects: list[Path], tmp_path: Path) -> None:
    made = global_backup(tmp_path, "--output", str(tmp_path / "g.tar.zst"))
    write_files(projects[1], {"src/later.py": "def added_after_the_backup():\n    return 2\n"})
    run_cidx(["index"], projects[1])
    before_answers = [answers(root) for root in projects]
    data = Path(os.environ["CIDX_DATA_DIR"])
    for point in ("restore.extracted", "restore.swap"):
        before = store_bytes()
        killed = run_cidx(
            ["restore", made["archive"], "--force"],
            tmp_path,
            env={"CIDX_FAILPOINT": point},
            check=False,
        )
        assert killed.returncode == -signal.SIGKILL
        assert store_bytes() == before
        assert [answers(root) for root in projects] == before_answers
    assert list(data.glob(".restore.*.tmp"))
    # The next restore removes what the killed one left, and succeeds.
    run_cidx(["restore", made["archive"], "--force"], tmp_path)
    assert not list(data.glob(".*.tmp"))
    assert answers(projects[0]) == before_answers[0]
    assert run_cidx(["doctor"], projects[0]).returncode == 0


def test_global_backup_pauses_a_running_watch(projects: list[Path], tmp_path: Path) -> None:
    """A project whose `cidx watch` runs is paused through it (not waited
    for): the watcher answers queries meanwhile and follows edits after."""
    from tests.test_watch import Watcher

    watcher = Watcher(projects[0])
    try:
        made = global_backup(tmp_path, "--output", str(tmp_path / "b"), "--no-wait")
        assert made["points"] > 0 and watcher.proc.poll() is None
        assert run_cidx(["query", "verify token", "--json"], projects[0]).results()
        # The pause ended: a new file is indexed by the watcher.
        write_files(projects[0], {"src/fresh.py": "def compress_archive_stream():\n    return 1\n"})
        watcher.settle()
        top = run_cidx(["query", "compress archive stream", "--json"], projects[0]).results()
        assert top[0]["path"] == "src/fresh.py"
    finally:
        watcher.stop(signal.SIGTERM)
    other = {"CIDX_DATA_DIR": str(tmp_path / "other")}
    run_cidx(["restore", made["archive"]], tmp_path, env=other)
    report = run_cidx(["status", "--json"], projects[1], env=other).json()
    assert report["points"] == report["chunks"] > 0
