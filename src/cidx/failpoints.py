"""Named failure points for the crash-safety and retry tests.

`CIDX_FAILPOINT=name` (or `name:N` for the N-th time it is reached) makes the
process SIGKILL itself at that point, so tests can stop a sync between any
two of its writes deterministically instead of racing a timer;
`name:N:SIGINT` (any signal name) sends that signal instead, as a user's
Ctrl-C would. `CIDX_FAILPOINT_RAISE=name:N` instead raises an `OSError` the
first N times the point is reached, as a failing disk or store would. Unset,
a failpoint costs one comparison.
"""

from __future__ import annotations

import os
import signal


def _parse(value: str) -> tuple[str, int, signal.Signals]:
    name, _, rest = value.partition(":")
    count, _, sig = rest.partition(":")
    return (
        name,
        int(count) if count.isdigit() else 1,
        signal.Signals[sig] if sig else signal.SIGKILL,
    )


_KILL = _parse(os.environ.get("CIDX_FAILPOINT", ""))
_RAISE = _parse(os.environ.get("CIDX_FAILPOINT_RAISE", ""))
_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    if name != _KILL[0] and name != _RAISE[0]:
        return
    hits = _hits[name] = _hits.get(name, 0) + 1
    if name == _KILL[0] and hits == _KILL[1]:
        os.kill(os.getpid(), _KILL[2])
    if name == _RAISE[0] and hits <= _RAISE[1]:
        raise OSError(f"injected failure at {name} ({hits} of {_RAISE[1]})")
