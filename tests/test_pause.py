"""`cidx force-flush`, `cidx pause` and `cidx resume`, as real processes.

A pause through a running watcher holds its writes (queries still answered,
its file events wait) and flushes; a pause with no owner starts a detached
holder that owns the index until resume or its timeout. Every ending is
checked by polling for its effect, never by sleeping.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cidx.owner.lock import lock_is_held, pid_alive, read_owner
from cidx.project import ProjectPaths
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.helpers import until
from tests.test_watch import Watcher


def _exited(pid: int) -> bool:
    """The process is gone, or only a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return not pid_alive(pid)
    return state in ("Z", "X")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    root = tmp_path / "demo"
    write_files(root, DEMO_PROJECT)
    run_cidx(["index"], root)
    return root


def _top_paths(root: Path, query: str) -> list[str]:
    return [r["path"] for r in run_cidx(["query", query, "--json"], root).results()]


def test_force_flush_in_process_and_through_the_owner(demo: Path, watchers: list[Watcher]) -> None:
    report = run_cidx(["force-flush", "--json"], demo).json()
    assert report["ok"] is True
    status = run_cidx(["status", "--json"], demo).json()
    [flushed] = report["collections"]
    assert flushed["collection"] == Path(status["storage_path"]).name
    assert flushed["points"] == status["chunks"] > 0
    assert report["state"]["complete"] is True
    assert report["state"]["error"] is None

    w = Watcher(demo)
    watchers.append(w)
    owned = run_cidx(["force-flush", "--json"], demo).json()
    assert owned["pid"] == w.proc.pid  # the owner flushed, not the command
    assert owned["ok"] is True

    human = run_cidx(["force-flush"], demo)
    assert "durable on disk" in human.stdout

    wrong = run_cidx(["force-flush", "--collection", "nope"], demo, check=False)
    assert wrong.returncode == 2
    assert "has no collection 'nope'" in wrong.stderr
    assert "Run `cidx force-flush` without --collection" in wrong.stderr
    one = run_cidx(["force-flush", "--collection", flushed["collection"], "--json"], demo).json()
    assert [c["collection"] for c in one["collections"]] == [flushed["collection"]]
    assert w.stop() == 0


def test_force_flush_without_an_index(tmp_path: Path) -> None:
    result = run_cidx(["force-flush"], tmp_path, check=False)
    assert result.returncode == 10
    assert "no cidx index" in result.stderr
    assert not (tmp_path / ".code-indexer").exists()


def test_pause_holds_a_watchers_writes_until_resume(demo: Path, watchers: list[Watcher]) -> None:
    w = Watcher(demo)
    watchers.append(w)
    paused = run_cidx(["pause", "--timeout", "120", "--json"], demo).json()
    assert paused["pid"] == w.proc.pid
    assert [c["error"] for c in paused["flush"]["collections"]] == [None]
    [hold] = paused["holds"]
    assert hold["by"] == "cidx pause"

    status = run_cidx(["status", "--json"], demo).json()
    assert [p["by"] for p in status["pauses"]] == ["cidx pause"]
    assert "Paused" in run_cidx(["status"], demo).stdout

    # An edit while paused waits in the watcher's queue.
    write_files(
        demo, {"src/billing/invoice.py": "def send_overdue_invoice_reminders():\n    pass\n"}
    )
    answer = run_cidx(["query", "overdue invoice reminders", "--json"], demo)
    assert "src/billing/invoice.py" not in [r["path"] for r in answer.results()]
    assert "is paused" in answer.stderr  # searched as it is, and told so
    # The watcher keeps its events while paused: nothing was synced.
    assert w.status().pending.added == 1

    # A write sent to the paused owner that will not wait is refused, naming resume.
    busy = run_cidx(["index", "--wait-timeout", "1"], demo, check=False)
    assert busy.returncode == 7
    assert "Run `cidx resume` there to end the pause" in busy.stderr

    resumed = run_cidx(["resume", "--json"], demo).json()
    assert [h["by"] for h in resumed["released"]] == ["cidx pause"]
    until(
        lambda: "src/billing/invoice.py" in _top_paths(demo, "overdue invoice reminders"),
        "the edit made during the pause to be indexed after resume",
    )
    assert run_cidx(["status", "--json"], demo).json()["pauses"] == []
    assert run_cidx(["index"], demo).returncode == 0
    assert w.stop() == 0


def test_pause_without_an_owner_starts_a_holder(demo: Path) -> None:
    paths = ProjectPaths(demo)
    run_cidx(["pause", "--timeout", "120"], demo)
    owner = read_owner(paths)
    assert owner is not None and owner.kind == "pause"
    assert lock_is_held(paths.lock_file)
    status = run_cidx(["status", "--json"], demo).json()
    assert status["owner_kind"] == "pause"
    assert [p["by"] for p in status["pauses"]] == ["cidx pause"]
    # Queries are answered by the holder, without syncing.
    assert _top_paths(demo, "retry failed uploads")[0] == "src/uploads/retry.py"
    busy = run_cidx(["index", "--no-wait"], demo, check=False)
    assert busy.returncode == 7
    assert "is paused" in busy.stderr

    result = run_cidx(["resume"], demo)
    assert "Resumed" in result.stdout
    # resume returns once the holder let go: nothing is left running.
    assert not lock_is_held(paths.lock_file)
    until(lambda: _exited(owner.pid), "the holder to exit")
    assert not paths.socket_path.exists()
    assert read_owner(paths) is None
    run_cidx(["index", "--no-wait"], demo)


def test_a_pause_ends_by_itself_at_its_timeout(demo: Path, watchers: list[Watcher]) -> None:
    paths = ProjectPaths(demo)
    run_cidx(["pause", "--timeout", "2"], demo)
    holder = read_owner(paths)
    assert holder is not None and holder.kind == "pause"
    until(lambda: not lock_is_held(paths.lock_file), "the holder to exit at its timeout")
    until(lambda: _exited(holder.pid), "the holder to exit")
    run_cidx(["index", "--no-wait"], demo)

    # Through a watcher: its held edit is applied when the pause expires.
    w = Watcher(demo)
    watchers.append(w)
    run_cidx(["pause", "--timeout", "2"], demo)
    write_files(demo, {"notes/cache.md": "# Cache\n\nEvict the least recently used tiles.\n"})
    until(
        lambda: "notes/cache.md" in _top_paths(demo, "evict least recently used tiles"),
        "the edit to be indexed once the pause expired",
    )
    assert run_cidx(["status", "--json"], demo).json()["pauses"] == []
    assert w.stop() == 0


def test_resume_without_a_pause(demo: Path, tmp_path: Path) -> None:
    result = run_cidx(["resume"], demo)
    assert "was not paused" in result.stdout
    assert run_cidx(["resume", "--json"], demo).json()["released"] == []

    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    for command in (["resume"], ["pause"]):
        refused = run_cidx(command, elsewhere, check=False)
        assert refused.returncode == 10
        assert "There is no cidx index" in refused.stderr
    bad = run_cidx(["pause", "--timeout", "0"], demo, check=False)
    assert bad.returncode == 2
    assert "--timeout" in bad.stderr
