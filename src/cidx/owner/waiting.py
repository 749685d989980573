"""Waiting for the process that owns an index: the policy, and taking the lock.

Every command that needs an index to itself (or has to reach its owner)
waits the same way: as long as `WaitPolicy.timeout` allows, telling
`on_wait` once whom it waits for, and failing with one `LockBusyError`
wording. `cidx.service` uses it to open an index; `cidx fix-config`, `cidx
clone` and `cidx pause` use it to hold the lock without opening the index.
An index the daemon (`cidx.daemon`) holds only for the commands it serves
is given up when a command asks for the lock: nobody waits for its idle
release. One it keeps live is not, and the command fails at once, naming
`cidx watch --stop`: that wait would never end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from cidx.daemon import DAEMON_KIND, release as daemon_release
from cidx.errors import LockBusyError
from cidx.owner.lock import OwnerInfo, OwnerLock, read_owner
from cidx.project import ProjectPaths

__all__ = ["NO_WAIT", "WAIT_FOREVER", "WaitPolicy", "busy_error", "take_lock"]

if TYPE_CHECKING:
    from cidx.migration import MigrationFn

WaitFn = Callable[[OwnerInfo | None], None]
NoticeFn = Callable[[str], None]
H = TypeVar("H")


@dataclass(frozen=True)
class WaitPolicy:
    """How long a command waits for another process that owns the index,
    and what it is told meanwhile.

    `timeout` None waits as long as it takes, 0 fails at once (`--no-wait`).
    `on_wait` is told once, when waiting starts, who is being waited for.
    `on_notice` is told, in one sentence each, what opening the index found
    and did on the way (a project that moved, see `cidx.relocate`); without
    it those sentences only go to the log. `on_migration` is told how a
    migration of the index advances, which the command also waits for before
    the index opens (`cidx.migration`).
    """

    timeout: float | None = None
    on_wait: WaitFn | None = None
    on_notice: NoticeFn | None = None
    on_migration: MigrationFn | None = None


WAIT_FOREVER = WaitPolicy()
NO_WAIT = WaitPolicy(timeout=0)


def take_lock(
    lock: OwnerLock,
    paths: ProjectPaths,
    wait: WaitPolicy,
    reach: Callable[[], H | None] | None = None,
) -> H | None:
    """Take `lock`, waiting for the process that holds it as `wait` allows.

    With `reach`, an owner that starts answering on its socket meanwhile is
    used instead: what `reach` returned is returned, and the lock is not taken.
    """
    deadline = None if wait.timeout is None else time.monotonic() + wait.timeout
    told = False
    asked_daemon = False
    while not lock.try_acquire():
        if reach is not None and (handle := reach()) is not None:
            return handle
        owner = read_owner(paths)
        if owner is not None and owner.kind == DAEMON_KIND and not asked_daemon:
            # The daemon holds it only for the commands it serves (unless it
            # watches it): it gives it up when asked.
            asked_daemon = True
            if daemon_release(paths.root):
                continue
        if deadline is not None and time.monotonic() >= deadline:
            raise busy_error(paths, owner, wait.timeout)
        if not told and wait.on_wait is not None:
            wait.on_wait(owner)
            told = True
        time.sleep(0.1)
    return None


def busy_error(paths: ProjectPaths, owner: OwnerInfo | None, waited: float | None) -> LockBusyError:
    """The error of a command that gave up waiting (or, `waited` 0, would not wait)."""
    who = owner.describe() if owner else "another cidx process"
    stop = f" (`kill {owner.pid}` stops it)" if owner else ""
    if waited:
        return LockBusyError(
            f"Gave up after waiting {waited:g} s for {who}, which is using the index of "
            f"{paths.root}{stop}. Run the command again when it is done, or give it longer "
            "with --wait-timeout SECONDS."
        )
    return LockBusyError(
        f"The index of {paths.root} is busy: {who} is using it{stop}. Run the command "
        "without --no-wait to wait for it."
    )
