"""One writer per collection of a shared Qdrant server: the writer lease.

The claims live in the real server store (qdrant-client's local mode, the
same code as on a server); several machines are several `WriterLease`s with
their own holders (and clocks, where expiry matters). The engine test opens
a real server-mode project and meets a claim another machine holds. Two
processes on two machines against one server need a real server
(`CIDX_TEST_QDRANT_URL`): local mode opens in one process only.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cidx.errors import ExitCode
from cidx.lease import LEASE_SECONDS, LeaseHeldError, WriterLease
from cidx.messages import QueryRequest, SearchRequest
from cidx.store import Claim
from cidx.store.server import ServerStore
from cidx.store.server_claims import CLAIMS, ServerClaims
from tests.conftest import DEMO_PROJECT, cidx_cmd, run_cidx, write_files
from tests.helpers import opened

KEY = "project-collection"


@pytest.fixture
def claims() -> Iterator[ServerClaims]:
    store = ServerStore.in_memory()
    try:
        yield store.writer_claims()
    finally:
        store.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _lease(claims: ServerClaims, name: str, clock: Clock | None = None) -> WriterLease:
    lease = WriterLease(claims, KEY, clock=clock or time.time, holder=name)
    lease.host, lease.pid = f"host-{name}", 1000 + len(name)
    return lease


def test_one_holder_at_a_time_and_the_next_after_release(claims: ServerClaims) -> None:
    a, b = _lease(claims, "a"), _lease(claims, "bb")
    assert a.acquire() is None and a.held
    blocker = b.acquire()
    assert blocker is not None and not b.held
    assert (blocker.host, blocker.pid) == ("host-a", 1001)
    # B's refused claim is gone: only A's is there, held.
    assert [(c.holder, c.state) for c in claims.of(KEY)] == [("a", "held")]
    a.release()
    assert not a.held and claims.of(KEY) == []
    assert b.acquire() is None and b.held
    b.release()


def test_an_expired_holder_is_replaced_and_stops_writing(claims: ServerClaims) -> None:
    clock_a, clock_b = Clock(), Clock()
    a, b = _lease(claims, "a", clock_a), _lease(claims, "bb", clock_b)
    assert a.acquire() is None
    # A keeps writing only while its last renewal is recent.
    clock_a.now += LEASE_SECONDS * 0.6
    assert a.held
    clock_a.now += LEASE_SECONDS * 0.1
    assert not a.held
    # Another machine, a lease later: A's claim expired (A died or lost the server).
    clock_b.now += LEASE_SECONDS + 1
    assert b.acquire() is None and b.held
    # A comes back: its renewal finds B holding, so it stops for good.
    assert a.renew() is False and not a.held
    assert [(c.holder, c.state) for c in claims.of(KEY)] == [("bb", "held")]
    b.release()
    a.release()


def test_a_holder_that_renews_keeps_the_lease(claims: ServerClaims) -> None:
    clock = Clock()
    a, b = _lease(claims, "a", clock), _lease(claims, "bb", clock)
    assert a.acquire() is None
    for _ in range(5):
        clock.now += LEASE_SECONDS / 3
        assert a.renew() and a.held
    assert b.acquire() is not None
    a.release()


def _ask(start: threading.Barrier, lease: WriterLease) -> None:
    start.wait()
    lease.acquire()


def test_processes_asking_at_once_never_both_hold(claims: ServerClaims) -> None:
    for round_ in range(25):
        leases = [_lease(claims, f"p{round_}-{i}") for i in range(3)]
        start = threading.Barrier(len(leases))
        threads = [threading.Thread(target=_ask, args=(start, x)) for x in leases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        holders = [lease for lease in leases if lease.held]
        assert len(holders) <= 1, f"round {round_}: {[x.holder for x in holders]}"
        held = [c for c in claims.of(KEY) if c.state == "held"]
        assert [c.holder for c in held] == [x.holder for x in holders]
        for lease in leases:
            lease.release()
        assert claims.of(KEY) == []


def test_the_claims_collection_is_not_a_project_collection(claims: ServerClaims) -> None:
    store = ServerStore.in_memory()
    try:
        store.create_collection("project", 8)
        lease = WriterLease(store.writer_claims(), "project")
        assert lease.acquire() is None
        assert store.client.collection_exists(CLAIMS)
        assert store.list_collections() == ["project"]
        lease.release()
    finally:
        store.close()


QUERY = SearchRequest([QueryRequest(text="verify token signature")])


def _server_project(tmp_path: Path) -> Path:
    """An indexed project on a server (qdrant-client's local mode)."""
    root, folder = tmp_path / "project", tmp_path / "qdrant"
    write_files(root, DEMO_PROJECT)
    run_cidx(["init", "--storage", "server", "--qdrant-url", f"local:{folder}"], root)
    run_cidx(["index"], root)
    return root


def test_a_server_project_written_elsewhere_answers_queries_and_refuses_writes(
    tmp_path: Path,
) -> None:
    root = _server_project(tmp_path)
    with opened(root) as engine:
        assert engine.lease is not None
        other = Claim(engine.collection, "elsewhere", "build-box", 4242, "held", time.time() + 60)
        engine.lease.claims.put(other)
        (root / "late.py").write_text("def verify_token_signature_late():\n    pass\n")

        outcome = engine.search_outcome(QUERY)
        assert outcome.answers[0].results, "queries are answered"
        assert outcome.sync is None, "no sync while another machine writes"
        assert any("build-box (pid 4242)" in w for w in outcome.warnings)
        with pytest.raises(LeaseHeldError, match="build-box"):
            engine.sync()
        assert not engine.lease.held

        engine.lease.claims.drop(engine.collection, "elsewhere")
        summary = engine.sync()
        assert summary.files_added == 1
        mine = engine.lease.claims.of(engine.collection)
        assert [(c.host, c.pid, c.state) for c in mine] == [
            (engine.lease.host, os.getpid(), "held")
        ]
    # Closing gave the lease up: another process writes at once.
    (root / "after.py").write_text("def after_close():\n    pass\n")
    assert run_cidx(["index", "--json"], root).json()["files_added"] == 1


class Counted:
    """Claims that count the requests made through them."""

    def __init__(self, claims: ServerClaims) -> None:
        self.claims, self.reads, self.writes = claims, 0, 0

    def put(self, claim: Claim) -> None:
        self.writes += 1
        self.claims.put(claim)

    def drop(self, key: str, holder: str) -> None:
        self.writes += 1
        self.claims.drop(key, holder)

    def of(self, key: str) -> list[Claim]:
        self.reads += 1
        return self.claims.of(key)


def test_a_refusal_is_remembered_until_the_holders_claim_expires(claims: ServerClaims) -> None:
    clock = Clock()
    a = _lease(claims, "a", clock)
    counted = Counted(claims)
    b = WriterLease(counted, KEY, clock=clock, holder="bb")
    assert b.refused() is None, "never asked: nothing to remember"
    assert a.acquire() is None
    holder = b.acquire()
    assert holder is not None and (counted.reads, counted.writes) == (1, 2)
    clock.now += LEASE_SECONDS - 1
    assert b.refused() == holder
    assert (counted.reads, counted.writes) == (1, 2), "remembered: no request"
    clock.now += 1
    assert b.refused() is None, "the holder's claim has expired: ask again"
    a.release()
    assert b.acquire() is None and b.refused() is None
    b.release()


def test_syncing_queries_ask_for_a_held_lease_once(tmp_path: Path) -> None:
    root = _server_project(tmp_path)
    with opened(root) as engine:
        assert engine.lease is not None
        real = engine.lease.claims
        assert isinstance(real, ServerClaims)
        other = Claim(engine.collection, "elsewhere", "build-box", 4242, "held", time.time() + 60)
        real.put(other)
        counted = Counted(real)
        engine.lease.claims = counted
        for _ in range(3):
            outcome = engine.search_outcome(QUERY)
            assert outcome.sync is None and outcome.answers[0].results
            assert any("build-box (pid 4242)" in w for w in outcome.warnings)
        assert (counted.reads, counted.writes) == (1, 2), "asked once, then remembered"
        # A write asks again: the holder may have stopped meanwhile.
        real.drop(engine.collection, "elsewhere")
        assert engine.sync().files_added == 0
        assert engine.lease.held


@pytest.mark.skipif(
    not os.environ.get("CIDX_TEST_QDRANT_URL"),
    reason="needs a real Qdrant server: set $CIDX_TEST_QDRANT_URL (two processes share one "
    "server; local mode opens in one process only); no Qdrant server binary can be installed "
    "here",
)
def test_two_machines_one_server_project(tmp_path: Path) -> None:
    url = os.environ["CIDX_TEST_QDRANT_URL"]
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        write_files(root, DEMO_PROJECT)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(
            ["git", "-C", str(root), "remote", "add", "origin", "https://example.com/team/app"],
            check=True,
        )
    run_cidx(["init", "--storage", "server", "--qdrant-url", url], a)
    run_cidx(["init", "--storage", "server", "--qdrant-url", url], b)
    run_cidx(["index"], a)
    with subprocess.Popen([*cidx_cmd(), "watch"], cwd=a) as watcher:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                refused = run_cidx(["index"], b, check=False)
                if refused.returncode == ExitCode.BUSY:
                    break
            assert refused.returncode == ExitCode.BUSY
            assert "is being written by" in refused.stderr
            answered = run_cidx(["query", "verify token signature"], b)
            assert "without syncing" in answered.stderr
        finally:
            watcher.terminate()
