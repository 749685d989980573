"""Running the doctor: take the index to itself, inspect, repair, inspect again."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from cidx.doctor._checks import inspect
from cidx.doctor._repair import ProgressFn, repair_index
from cidx.doctor._report import Check, DoctorReport
from cidx.errors import CidxError, LockBusyError, NoIndexError
from cidx.migration import run_pending
from cidx.owner.lock import OwnerLock, read_owner
from cidx.project import ProjectPaths, project_paths
from cidx.service import WAIT_FOREVER, WaitPolicy

# Owners that keep the index open until stopped: the doctor does not wait for them.
LONG_LIVED = frozenset({"watch", "sync", "serve", "mcp"})


def run_doctor(
    start: Path | None = None,
    *,
    repair: bool = False,
    wait: WaitPolicy = WAIT_FOREVER,
    progress: ProgressFn | None = None,
) -> DoctorReport:
    """Check the project's index (and with `repair`, fix what can be fixed)."""
    paths = project_paths(start)
    if not paths.index_dir.is_dir():
        raise NoIndexError(
            f"There is no cidx index in {paths.root}, so there is nothing to check. Run "
            "`cidx index` to create one."
        )
    lock = OwnerLock(paths, "doctor")
    _acquire(lock, paths, wait)
    try:
        if paths.exists():
            # What a migration cannot do (an unreadable config, say) is what
            # the checks below report.
            with contextlib.suppress(CidxError):
                run_pending(paths, wait.on_migration)
        found = inspect(paths)
        if not repair or all(c.status == "ok" for c in found.checks):
            return DoctorReport(str(paths.root), str(paths.index_dir), repair, found.checks)
        actions, summary = repair_index(paths, found, progress)
        after = inspect(paths)
        before = {c.name: c for c in found.checks}
        checks = [_compare(before[c.name], c) for c in after.checks]
        return DoctorReport(str(paths.root), str(paths.index_dir), repair, checks, actions, summary)
    finally:
        lock.release()


def _acquire(lock: OwnerLock, paths: ProjectPaths, wait: WaitPolicy) -> None:
    """Take the owner lock as `wait` allows; never wait for a long-lived owner."""
    deadline = None if wait.timeout is None else time.monotonic() + wait.timeout
    told = False
    while not lock.try_acquire():
        owner = read_owner(paths)
        who = owner.describe() if owner else "another cidx process"
        if owner is not None and owner.kind in LONG_LIVED:
            raise LockBusyError(
                f"`cidx doctor` needs the index of {paths.root} to itself, and {who} keeps it "
                "open. Stop that process, run `cidx doctor` again, then start it again."
            )
        if deadline is not None and time.monotonic() >= deadline:
            raise LockBusyError(
                f"The index of {paths.root} is in use by {who}. Run `cidx doctor` again when "
                "it has finished (or with a longer --wait-timeout)."
            )
        if not told and wait.on_wait is not None:
            wait.on_wait(owner)
            told = True
        time.sleep(0.1)


def _compare(before: Check, after: Check) -> Check:
    """The final word on a check: repaired when it was wrong and no longer is."""
    if before.status in ("problem", "warning", "skipped") and after.status == "ok":
        if before.status == "skipped":
            return after
        return Check(after.name, "repaired", f"{before.detail} → {after.detail}")
    return after
