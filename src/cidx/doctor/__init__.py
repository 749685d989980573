"""`cidx doctor`: a full check of one project's index, and the repairs it can make.

Each check looks at one thing — the config, the state database, the store's
shard, whether manifest and store agree (counts, point ids, every payload,
a sample of vectors against the embedding cache), leftovers in the index
folder, the owner's lock and socket, permissions, free space — and reports
it with the next step. A check that cannot run because an earlier one
failed (no readable config, say) is reported as skipped.

With `repair`, what can be fixed is fixed, in dependency order: the config
is recreated around the existing data, the state database rebuilt from the
shard, a damaged shard marked so that the sync that follows sets it aside
and rebuilds it, drift reconciled by that sync; then leftovers, stale owner
files and permissions are cleaned up, and every check runs again, so the
report says what was repaired and what still needs a person.

The doctor needs the index to itself: it waits for a one-shot command to
finish, and refuses to run beside a long-lived owner (`cidx watch`, ...).
"""

from cidx.doctor._report import CHECK_NAMES, Check, CheckStatus, DoctorReport
from cidx.doctor._run import run_doctor

__all__ = ["CHECK_NAMES", "Check", "CheckStatus", "DoctorReport", "run_doctor"]
