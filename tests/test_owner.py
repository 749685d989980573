"""One owner per index: the lock, the socket, and commands meeting a busy index."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cidx.owner.client import OwnerClient
from cidx.project import ProjectPaths
from tests.conftest import cidx_cmd, run_cidx, write_files
from tests.helpers import generated_module


def _big_project(root: Path, files: int = 160) -> None:
    write_files(root, {f"pkg/m{i:03d}.py": generated_module(i) for i in range(files)})


def _wait_until_busy(
    paths: ProjectPaths, proc: subprocess.Popen[str], timeout: float = 60
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    client = OwnerClient(paths.socket_path)
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the indexing process ended before it was seen busy"
        try:
            state = client.ping()
        except Exception:
            state = {}
        if state.get("busy"):
            return state
        time.sleep(0.05)
    raise AssertionError("the owner never reported a running sync")


@pytest.fixture
def deep_root(tmp_path: Path) -> Path:
    # Deeper than a Unix socket path may be: the socket is reached through /proc.
    root = tmp_path / ("d" * 60) / ("e" * 60) / "project"
    assert len(str(root / ".code-indexer" / "owner.sock")) > 108
    return root


@pytest.mark.slow
def test_commands_meet_a_busy_owner(deep_root: Path) -> None:
    _big_project(deep_root)
    paths = ProjectPaths(deep_root)
    owner = subprocess.Popen(
        [*cidx_cmd(), "index"],
        cwd=deep_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        state = _wait_until_busy(paths, owner)
        assert state["pid"] == owner.pid
        mode = stat.S_IMODE(os.stat(paths.socket_path).st_mode)
        assert mode == 0o600
        info = json.loads(paths.owner_info.read_text())
        assert (info["pid"], info["kind"]) == (owner.pid, "index")

        # --no-wait fails at once and names the owner.
        busy = run_cidx(["index", "--no-wait"], deep_root, check=False)
        assert busy.returncode == 7
        assert f"`cidx index` (pid {owner.pid})" in busy.stderr and "--no-wait" in busy.stderr

        # Reads are answered by the owner while it indexes.
        status = run_cidx(["status", "--json"], deep_root).json()
        assert status["owner_pid"] == owner.pid and status["owner_kind"] == "index"
        found = run_cidx(
            ["query", "upload retry", "--no-sync", "--json", "-n", "3"], deep_root
        ).json()
        assert isinstance(found["results"], list)

        # A second index waits (saying so), then runs after the first.
        second = run_cidx(["index", "--json"], deep_root)
        assert f"Waiting for `cidx index` (pid {owner.pid})" in second.stderr
        assert second.json()["files_unchanged"] == 160
    finally:
        out, err = owner.communicate(timeout=300)
    assert owner.returncode == 0, err
    assert "160 added" in out
    # The owner cleaned up after itself.
    assert not paths.socket_path.exists() and not paths.owner_info.exists()


@pytest.mark.slow
def test_a_killed_owner_leaves_nothing_that_blocks(deep_root: Path) -> None:
    _big_project(deep_root, files=120)
    paths = ProjectPaths(deep_root)
    # The owner dies the moment a waiting client's request reaches it.
    owner = subprocess.Popen(
        [*cidx_cmd(), "index"],
        cwd=deep_root,
        env={**os.environ, "CIDX_FAILPOINT": "owner_request_index"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_until_busy(paths, owner)
    waiter = subprocess.Popen(
        [*cidx_cmd(), "index", "--json"],
        cwd=deep_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert owner.wait(timeout=300) == -signal.SIGKILL, "the owner finished before the waiter came"
    assert paths.socket_path.exists() and paths.owner_info.exists()  # left behind
    out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err
    assert f"Waiting for `cidx index` (pid {owner.pid})" in err
    summary = json.loads(out)
    # The waiter took over and finished the job.
    assert summary["files_scanned"] == 120
    status = run_cidx(["status", "--json"], deep_root).json()
    assert status["files"] == 120 and status["pending"]["added"] == 0
    # Nobody else owns the index now: the status command answered itself.
    assert status["owner_kind"] == "status"


def test_stale_socket_and_owner_record_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_files(root, {"a.py": "def alpha():\n    return 1\n"})
    run_cidx(["index"], root)
    paths = ProjectPaths(root)
    # A socket file nobody listens on, and a record of a dead process.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(paths.socket_path))
    stale.close()
    dead = subprocess.Popen(["true"])
    dead.wait()
    paths.owner_info.write_text(json.dumps({"pid": dead.pid, "kind": "watch", "started_at": 0}))
    out = run_cidx(["query", "alpha", "--json", "--no-wait"], root)
    assert out.results()[0]["symbol"] == "alpha"
    assert not paths.socket_path.exists()
    status = run_cidx(["status", "--json"], root).json()
    assert status["owner_kind"] == "status"


def test_lock_is_exclusive_within_and_across_processes(tmp_path: Path) -> None:
    from cidx.errors import LockBusyError
    from cidx.owner.lock import OwnerLock

    paths = ProjectPaths(tmp_path)
    first = OwnerLock(paths, "test")
    first.acquire()
    second = OwnerLock(paths, "test")
    assert not second.try_acquire()
    from cidx import service

    with (
        pytest.raises(LockBusyError, match=r"busy: `cidx test` .* without --no-wait"),
        service.open_index(tmp_path, kind="x", wait=service.NO_WAIT),
    ):
        pass
    told: list[object] = []
    waited = service.WaitPolicy(timeout=0.3, on_wait=told.append)
    with (
        pytest.raises(LockBusyError, match=r"Gave up after waiting 0.3 s for `cidx test`"),
        service.open_index(tmp_path, kind="x", wait=waited),
    ):
        pass
    assert len(told) == 1  # told once who is being waited for
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from cidx.owner.lock import OwnerLock; "
            "from cidx.project import ProjectPaths; "
            "sys.exit(0 if not OwnerLock(ProjectPaths(Path(sys.argv[1])), 'x').try_acquire() else 1)",
            str(tmp_path),
        ],
        check=False,
    )
    assert child.returncode == 0
    first.release()
    assert second.try_acquire()
    second.release()
