"""The daemon socket's verbs: one typed request and answer each.

The wire format is the owner socket's (`cidx.owner.protocol`); only the
verbs differ. A project the daemon holds is reached on the project's own
socket like any owner, so these verbs are only about the daemon itself.
"""

from __future__ import annotations

from typing import Any

from cidx.daemon._messages import (
    AdoptRequest,
    AdoptResult,
    DaemonState,
    ProjectRequest,
    StopResult,
    WatchResult,
)
from cidx.messages import NoArgs
from cidx.owner.wire import Verb

STATE: Verb[NoArgs, DaemonState] = Verb("daemon_state", NoArgs, DaemonState)
# Take ownership of a project's index (a command in it found no owner).
ADOPT: Verb[AdoptRequest, AdoptResult] = Verb("adopt", AdoptRequest, AdoptResult)
WATCH: Verb[ProjectRequest, WatchResult] = Verb("watch", ProjectRequest, WatchResult)
UNWATCH: Verb[ProjectRequest, WatchResult] = Verb("unwatch", ProjectRequest, WatchResult)
# Give a project up now (`cidx serve` or a `cidx watch` of its own wants it).
RELEASE: Verb[ProjectRequest, WatchResult] = Verb("release", ProjectRequest, WatchResult)
STOP: Verb[NoArgs, StopResult] = Verb("stop", NoArgs, StopResult)

VERBS: dict[str, Verb[Any, Any]] = {
    v.name: v for v in (STATE, ADOPT, WATCH, UNWATCH, RELEASE, STOP)
}
