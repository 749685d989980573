"""The daemon's project slots under concurrent requests (in process, real index).

A request that waited for a project while the supervisor released it must
hold the project in a slot the daemon still knows: otherwise the index is
held by nobody — its lock is never released and its socket closes when the
forgotten slot is garbage-collected, so every later command waits forever.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from cidx.daemon._projects import Projects, _Project
from cidx.owner.lock import lock_is_held
from cidx.project import ProjectPaths
from tests.conftest import run_cidx, write_files
from tests.helpers import generated_module, until


class _CountingLock:
    """A lock that tells how many threads are blocked acquiring it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.blocked = 0

    def acquire(self, blocking: bool = True) -> bool:
        if not blocking:
            return self._lock.acquire(blocking=False)
        if self._lock.acquire(blocking=False):
            return True
        self.blocked += 1
        try:
            return self._lock.acquire()
        finally:
            self.blocked -= 1

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def test_a_request_that_waited_for_an_idle_release_is_held_by_a_known_slot(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    write_files(root, {f"src/m{i}.py": generated_module(i) for i in range(2)})
    run_cidx(["index", "--json"], root)
    projects = Projects(idle_release=0.0, threads=1, on_watched=lambda _roots: None)
    projects.adopt(root)
    slot = projects._projects[root]
    counting = _CountingLock()
    slot.guard = counting  # type: ignore[assignment]

    # The supervisor releases the idle project; while it closes it, a
    # command asks the daemon to take the project again.
    real_close = Projects._close
    asked = threading.Event()
    errors: list[BaseException] = []

    def slow_close(self: Projects, closing: _Project) -> None:
        asked.set()
        until(lambda: counting.blocked > 0, "the request waiting for the project", 30)
        real_close(self, closing)

    def adopt_again() -> None:
        asked.wait(30)
        try:
            projects.adopt(root)
        except BaseException as exc:  # reported below
            errors.append(exc)

    requester = threading.Thread(target=adopt_again)
    requester.start()
    projects._close = slow_close.__get__(projects)  # type: ignore[method-assign]
    try:
        projects.tick()
    finally:
        projects._close = real_close.__get__(projects)  # type: ignore[method-assign]
    requester.join(60)
    assert not requester.is_alive() and not errors, errors

    held: list[Any] = [p for p in projects.view() if p.root == str(root)]
    assert held and held[0].state == "open", projects.view()
    assert ProjectPaths(root).socket_path.exists()
    assert projects.close_all() == [str(root)]
    assert not lock_is_held(ProjectPaths(root).lock_file)
