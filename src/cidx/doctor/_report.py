"""What `cidx doctor` reports: one `Check` per thing looked at, in a `DoctorReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cidx.messages import IndexSummary

CheckStatus = Literal["ok", "warning", "problem", "repaired", "skipped"]
CHECK_NAMES = (
    "config",
    "state",
    "store",
    "counts",
    "ids",
    "payloads",
    "vectors",
    "aliases",
    "alias-registry",
    "leftovers",
    "owner",
    "permissions",
    "disk",
)


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    # The command (or action) that fixes it, when something is wrong.
    next_step: str | None = None


@dataclass(frozen=True)
class DoctorReport:
    root: str
    index_dir: str
    repair: bool
    checks: list[Check]
    # What `repair` did, one sentence each.
    actions: list[str] = field(default_factory=list)
    # The sync `repair` ran to refill and reconcile the index.
    sync: IndexSummary | None = None

    @property
    def healthy(self) -> bool:
        """No problem is left (warnings are reported, but the index works)."""
        return not any(c.status in ("problem", "skipped") for c in self.checks)
