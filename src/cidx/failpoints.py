"""Named crash points for the crash-safety tests.

`CIDX_FAILPOINT=name` (or `name:N` for the N-th time it is reached) makes the
process SIGKILL itself at that point, so tests can stop a sync between any
two of its writes deterministically instead of racing a timer. Unset, a
failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_spec = os.environ.get("CIDX_FAILPOINT", "")
_name, _, _nth = _spec.partition(":")
_remaining = int(_nth) if _nth.isdigit() else 1
_hits = 0


def failpoint(name: str) -> None:
    global _hits
    if not _spec or name != _name:
        return
    _hits += 1
    if _hits >= _remaining:
        os.kill(os.getpid(), signal.SIGKILL)
