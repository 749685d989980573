"""One writer per collection across machines: a lease kept in the shared store.

On one machine the owner lock (`cidx.owner.lock`) makes one process the
writer of an index. A Qdrant server is shared by many machines, each with
its own lock, so the writer of a server collection also holds a lease in
the server itself: any number of machines query a project, one at a time
syncs it.

The lease is built from claims (`cidx.store.Claims`), with no
compare-and-set, by this rule: a process writes its claim as a
`candidate`, then reads every claim on the collection. When no other live
claim is there it owns the lease (its claim becomes `held`); otherwise it
removes its claim and backs off. Because a claim is read only after it was
acknowledged, of two processes asking at once at least one sees the other:
both may back off (they try again after a random pause), but both can never
hold it. A held claim is renewed every `ttl / 3` seconds; one not renewed
for `ttl` seconds (its process died, or lost the server) is expired, and
the next writer takes over. Expiry is read by each machine's own clock,
so machines sharing a server keep their clocks in step (NTP); the lease's
60 s leaves room for ordinary drift.

A writer that finds, when renewing, that another process holds the lease
(its own had expired: the server was unreachable for a minute) stops
writing at once (`held` turns False).

A refusal is remembered until the holder's claim expires (`refused`): a
query that would sync first learns from it, with no request to the
server, that another machine writes; only a write asks again.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cidx.errors import LockBusyError
from cidx.store import Claim, Claims

__all__ = [
    "LEASE_SECONDS",
    "Holder",
    "LeaseHeldError",
    "WriterLease",
    "held_error",
    "query_note",
]

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
# A holder writes only within this share of the lease after its last
# renewal, so a clock running a little fast elsewhere never sees two writers.
SAFE_SHARE = 2 / 3
# Rounds of candidate/back-off before giving up on a collection that another
# process keeps asking for at the same moment.
ROUNDS = 4


class LeaseHeldError(LockBusyError):
    """Another process, on this machine or another, writes this collection."""

    def __init__(self, message: str, holder: Holder) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as its claim says."""

    host: str
    pid: int
    expires: float


def held_error(root: Path, collection: str, holder: Holder) -> LeaseHeldError:
    """The error for a write refused because `holder` writes `collection`."""
    return LeaseHeldError(
        f"The index of {root} (collection {collection} on its Qdrant server) is being "
        f"written by {_who(holder)}. Queries work from any machine; changes are indexed by "
        "that one. Stop cidx there (its lease then ends at once, or within "
        f"{LEASE_SECONDS:g} s if it died), then run the command again.",
        holder,
    )


def query_note(holder: Holder) -> str:
    """What a query answered without syncing first says about it."""
    return (
        f"Searched the index as it is on the server, without syncing changed files first: "
        f"{_who(holder)} is writing it."
    )


def _who(holder: Holder) -> str:
    return f"cidx on {holder.host} (pid {holder.pid})"


class WriterLease:
    """This process's lease on writing `key` (a collection) in a shared store."""

    def __init__(
        self,
        claims: Claims,
        key: str,
        *,
        ttl: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
        holder: str | None = None,
    ) -> None:
        self.claims = claims
        self.key = key
        self.ttl = ttl
        self._clock = clock
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.holder = holder or f"{self.host}:{self.pid}:{uuid.uuid4().hex[:12]}"
        self._held = False
        self._valid_until = 0.0
        self._refusal: Holder | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Whether this process may write now: it holds the lease, and renewed
        it recently enough that no other machine can think it expired (a
        writer cut off from the server stops before its claim runs out)."""
        return self._held and self._clock() < self._valid_until

    def refused(self) -> Holder | None:
        """Who held the lease when this process last asked for it in vain, while
        that holder's claim lasts (None: ask, it may be free)."""
        refusal = self._refusal
        if refusal is None or self._clock() >= refusal.expires:
            return None
        return refusal

    def acquire(self) -> Holder | None:
        """Take the lease: None when this process holds it now, else who does."""
        with self._lock:
            if self._held:
                return None
            self._refusal = None
            return self._ask()

    def _ask(self) -> Holder | None:
        """One request for the lease, in rounds (the caller holds `_lock`)."""
        blocker: Holder | None = None
        for round_ in range(ROUNDS):
            now = self._clock()
            self.claims.put(self._claim("candidate", now))
            others = self._others(now)
            if not others:
                self.claims.put(self._claim("held", now))
                self._held, self._valid_until = True, now + self.ttl * SAFE_SHARE
                self._start_renewing()
                return None
            self.claims.drop(self.key, self.holder)
            held = [c for c in others if c.state == "held"]
            first = (held or others)[0]
            blocker = Holder(first.host, first.pid, first.expires)
            if held:
                self._refusal = blocker
                return blocker
            # Another candidate asked at the same moment: both back off.
            if round_ + 1 < ROUNDS:
                self._stop.wait(random.uniform(0.05, 0.25) * (round_ + 1))
        return blocker

    def renew(self) -> bool:
        """Extend the lease; False (and writing must stop) when it was lost."""
        with self._lock:
            if not self._held:
                return False
            now = self._clock()
            if any(c.state == "held" for c in self._others(now)):
                # Another process took it over: this one's claim had expired
                # (the server was out of reach for a whole lease).
                log.warning(
                    "lost the writer lease on %s to another process; not writing it", self.key
                )
                self._held = False
                self.claims.drop(self.key, self.holder)
                return False
            self.claims.put(self._claim("held", now))
            self._valid_until = now + self.ttl * SAFE_SHARE
            return True

    def release(self) -> None:
        """Give the lease up (idempotent)."""
        self._stop.set()
        renewer, self._renewer = self._renewer, None
        if renewer is not None and renewer is not threading.current_thread():
            renewer.join()
        with self._lock:
            if not self._held:
                return
            self._held = False
            try:
                self.claims.drop(self.key, self.holder)
            except Exception:
                # Unreachable now: the claim expires on its own after `ttl`.
                log.warning("could not give up the writer lease on %s", self.key, exc_info=True)

    def _claim(self, state: str, now: float) -> Claim:
        return Claim(
            key=self.key,
            holder=self.holder,
            host=self.host,
            pid=self.pid,
            state="held" if state == "held" else "candidate",
            expires=now + self.ttl,
        )

    def _others(self, now: float) -> list[Claim]:
        """Live claims of other processes, oldest first; expired ones removed."""
        live = []
        for claim in self.claims.of(self.key):
            if claim.holder == self.holder:
                continue
            if claim.expires <= now:
                self.claims.drop(claim.key, claim.holder)
                continue
            live.append(claim)
        return sorted(live, key=lambda c: c.expires)

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(
            target=self._keep, name=f"cidx-lease-{self.key}", daemon=True
        )
        self._renewer.start()

    def _keep(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self.renew():
                    return
            except Exception:
                # The server is unreachable for now: try again next round; the
                # lease lasts `ttl`, three rounds.
                log.warning("could not renew the writer lease on %s", self.key, exc_info=True)


def take_lease(lease: WriterLease | None, root: Path, collection: str) -> None:
    """Hold `lease` (None: the store needs none) before writing `collection`;
    LeaseHeldError when another machine (or process) writes it."""
    if lease is None or lease.held:
        return
    holder = lease.acquire()
    if holder is not None:
        raise held_error(root, collection, holder)


def sync_refused(lease: WriterLease | None) -> str | None:
    """Take `lease` for a search's sync: None when it may sync, else the note
    that it answers from the index as another machine keeps it.

    Any number of machines query; the one writing keeps it current. Its
    claim is trusted until it expires: no request per query.
    """
    if lease is None:
        return None
    holder = lease.refused()
    if holder is None and not lease.held:
        holder = lease.acquire()
    return query_note(holder) if holder is not None else None
