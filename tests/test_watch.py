"""`cidx watch` as a real process, against real edits, renames and git checkouts.

Every scenario ends the same way: wait until the watcher has caught up
(status, answered by the watcher, shows no pending change), stop it with
SIGTERM, and compare the store with a clean rebuild of the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cidx.messages import StatusReport
from cidx.owner.client import OwnerClient
from cidx.project import ProjectPaths
from tests.conftest import cidx_cmd, run_cidx, write_files
from tests.helpers import clean_rebuild, full_snapshot, generated_module


class Watcher:
    def __init__(self, root: Path, *extra: str) -> None:
        self.root = root
        self.paths = ProjectPaths(root)
        self.log = root.parent / f"watch-{time.monotonic_ns()}.log"
        self._log_fh = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*cidx_cmd(), "watch", "--log-format", "json", *extra],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=self._log_fh,
        )
        self.client = OwnerClient(self.paths.socket_path)
        self.wait_ready()

    def _ping(self) -> dict[str, Any] | None:
        try:
            return self.client.ping()
        except Exception:
            return None

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            if any("catch-up sync" in e["message"] for e in self.events()):
                return
            time.sleep(0.05)
        raise AssertionError(f"watcher not ready:\n{self.log.read_text()}")

    def status(self) -> StatusReport:
        return self.client.call("status", None, StatusReport)

    def settle(self, timeout: float = 120) -> StatusReport:
        """Wait until the index holds exactly what is on disk (twice in a row)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            state = self._ping() or {}
            status = self.status()
            quiet = quiet + 1 if status.pending.total == 0 and not state.get("busy") else 0
            if quiet >= 3:
                return status
            time.sleep(0.1)
        raise AssertionError(f"watcher never caught up: {self.status()}\n{self.log.read_text()}")

    def events(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self._log_fh.close()
        return code


@pytest.fixture
def started() -> Iterator[list[Watcher]]:
    watchers: list[Watcher] = []
    yield watchers
    for w in watchers:
        if w.proc.poll() is None:
            w.stop(signal.SIGKILL)


def _watch(started: list[Watcher], root: Path, *extra: str) -> Watcher:
    w = Watcher(root, *extra)
    started.append(w)
    return w


def _stop_and_compare(w: Watcher, tmp_path: Path) -> None:
    assert w.stop() == 0, w.log.read_text()
    assert not w.paths.socket_path.exists()
    assert full_snapshot(w.root) == clean_rebuild(w.root, tmp_path)


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write_files(root, {f"src/m{i:02d}.py": generated_module(i) for i in range(12)})
    write_files(root, {"docs/intro.md": "# Intro\n\nHello.\n", ".gitignore": "*.log\n"})
    return root


def test_edit_create_delete_rename(started: list[Watcher], proj: Path, tmp_path: Path) -> None:
    w = _watch(started, proj)
    assert w.status().files == 14
    (proj / "src/m00.py").write_text(generated_module(100))
    write_files(proj, {"src/new_module.py": "def freshly_written_function():\n    return 'new'\n"})
    (proj / "src/m01.py").unlink()
    (proj / "src/m02.py").rename(proj / "src/renamed.py")
    status = w.settle()
    assert status.files == 14
    hits = run_cidx(["query", "freshly written function", "--json", "-n", "1"], proj).results()
    assert hits[0]["path"] == "src/new_module.py"
    # The rename re-embedded nothing.
    batches = [e for e in w.events() if "changed paths" in e["message"]]
    assert batches and batches[-1]["summary"]["deleted"] >= 1
    _stop_and_compare(w, tmp_path)


def test_poll_mode_follows_edits(started: list[Watcher], proj: Path, tmp_path: Path) -> None:
    w = _watch(started, proj, "--poll")
    (proj / "src/m00.py").write_text(generated_module(100))
    write_files(proj, {"src/polled.py": "def found_by_polling():\n    return 'polled'\n"})
    (proj / "src/m01.py").unlink()
    (proj / ".gitignore").write_text("*.log\nsrc/m02.py\n")  # an ignore file edit, too
    status = w.settle()
    assert status.files == 13
    hits = run_cidx(["query", "found by polling", "--json", "-n", "1"], proj).json()
    assert hits["results"][0]["path"] == "src/polled.py"
    assert any("changed paths" in e["message"] for e in w.events())
    _stop_and_compare(w, tmp_path)


def test_directory_rename_and_editor_saves(
    started: list[Watcher], proj: Path, tmp_path: Path
) -> None:
    w = _watch(started, proj)
    (proj / "src").rename(proj / "lib")
    w.settle()
    # vim-style: backup, write anew, remove backup; and write-temp-then-rename.
    target = proj / "lib/m03.py"
    shutil.copy(target, proj / "lib/m03.py~")
    target.unlink()
    target.write_text(generated_module(303))
    (proj / "lib/m03.py~").unlink()
    tmp = proj / "lib/.m04.py.tmp1234"
    tmp.write_text(generated_module(404))
    os.replace(tmp, proj / "lib/m04.py")
    w.settle()
    status = w.status()
    assert status.files == 14
    _stop_and_compare(w, tmp_path)


def test_ignore_file_edits_apply_live(started: list[Watcher], proj: Path, tmp_path: Path) -> None:
    write_files(proj, {"logs/app.log": "ERROR upload failed\n", "notes/todo.txt": "write docs\n"})
    w = _watch(started, proj)
    assert w.status().files == 15  # app.log is ignored
    (proj / ".gitignore").write_text("# nothing ignored\n")  # un-ignore *.log
    assert w.settle().files == 16
    assert run_cidx(["query", "upload failed", "--path", "*.log", "--json"], proj).results()
    write_files(proj, {"notes/.cidxignore": "*.txt\n"})  # a nested ignore file
    assert w.settle().files == 16  # + notes/.cidxignore, - notes/todo.txt
    assert (
        run_cidx(["query", "write docs", "--path", "notes/*.txt", "--json"], proj).results() == []
    )
    _stop_and_compare(w, tmp_path)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.mark.slow
def test_git_checkout_between_branches(started: list[Watcher], tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_files(root, {f"pkg/a{i:03d}.py": generated_module(i, 2) for i in range(200)})
    _git(root, "init", "-q", "-b", "main")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "main")
    _git(root, "checkout", "-q", "-b", "feature")
    for i in range(0, 200, 2):
        (root / f"pkg/a{i:03d}.py").write_text(generated_module(5000 + i, 2))  # 100 modified
    for i in range(1, 60, 2):
        (root / f"pkg/a{i:03d}.py").unlink()  # 30 deleted
    write_files(root, {f"feat/b{i:03d}.py": generated_module(9000 + i, 2) for i in range(80)})
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "feature")
    _git(root, "checkout", "-q", "main")

    w = _watch(started, root)
    # Queries and status from other processes keep working while it indexes.
    errors: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            out = run_cidx(["query", "upload retry", "--json", "-n", "3"], root, check=False)
            if out.returncode != 0:
                errors.append(out.stderr)
            st = run_cidx(["status", "--json"], root, check=False)
            if st.returncode != 0:
                errors.append(st.stderr)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        _git(root, "checkout", "-q", "feature")
        status = w.settle()
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert status.files == 250
    _stop_and_compare(w, tmp_path)

    # Back to main: every chunk of main is still in the embedding cache.
    w = _watch(started, root)
    before = len(w.events())
    _git(root, "checkout", "-q", "main")
    assert w.settle().files == 200
    embedded = sum(e["summary"]["embedded"] for e in w.events()[before:] if "summary" in e)
    assert embedded == 0
    _stop_and_compare(w, tmp_path)


@pytest.mark.slow
def test_killed_watcher_restarts_and_converges(started: list[Watcher], tmp_path: Path) -> None:
    root = tmp_path / "big"
    write_files(root, {f"pkg/a{i:03d}.py": generated_module(i) for i in range(30)})
    w = _watch(started, root)
    # A large batch, killed while it is being applied.
    write_files(root, {f"more/c{i:03d}.py": generated_module(7000 + i, 3) for i in range(150)})
    deadline = time.monotonic() + 60
    while not (w._ping() or {}).get("busy"):
        assert time.monotonic() < deadline, "the batch never started"
        time.sleep(0.02)
    time.sleep(0.3)
    w.stop(signal.SIGKILL)
    assert w.paths.socket_path.exists()  # left behind by the kill
    again = _watch(started, root)
    assert again.settle().files == 180
    _stop_and_compare(again, tmp_path)


def test_a_second_watcher_is_refused(started: list[Watcher], proj: Path) -> None:
    w = _watch(started, proj)
    second = run_cidx(["watch"], proj, check=False, timeout=60)
    assert second.returncode == 7
    assert f"already kept live by `cidx watch` (pid {w.proc.pid})" in second.stderr
    assert w.stop() == 0
    events = [e["message"] for e in w.events()]
    assert any("stopping, index flushed" in m for m in events)
