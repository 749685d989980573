"""A stop signal delivered to another thread than the main one still stops a
waiting owner (`cidx.interrupts.wait_for`)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from cidx.interrupts import SLICE_SECONDS, wait_for


@pytest.fixture
def flag() -> Iterator[threading.Event]:
    """An event that SIGUSR1's handler sets (the handler runs in the main thread)."""
    event = threading.Event()
    previous = signal.signal(signal.SIGUSR1, lambda _s, _f: event.set())
    try:
        yield event
    finally:
        signal.signal(signal.SIGUSR1, previous)


def _signal_from_another_thread(after: float) -> threading.Thread:
    """SIGUSR1 delivered, `after` seconds from now (while the main thread is
    blocked in its wait), to a thread other than the main one, as the kernel
    may deliver a `kill` to any thread of the process."""

    def send() -> None:
        time.sleep(after)  # the main thread is in its wait by then
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_wait_for_lets_the_handler_run_within_a_slice(flag: threading.Event) -> None:
    """A plain `flag.wait(30)` would sleep the whole 30 s: the main thread is
    not woken by a signal another thread received."""
    sender = _signal_from_another_thread(0.3)
    started = time.monotonic()
    assert wait_for(flag, 30.0)
    assert time.monotonic() - started < 0.3 + SLICE_SECONDS + 1.0
    sender.join()


def test_wait_for_times_out_and_returns_at_once_when_set() -> None:
    event = threading.Event()
    started = time.monotonic()
    assert not wait_for(event, 0.3)
    assert 0.25 <= time.monotonic() - started < 1.0
    event.set()
    assert wait_for(event) and wait_for(event, 0)
