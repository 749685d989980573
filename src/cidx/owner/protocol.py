"""Every operation an owner answers, declared once as a `Verb`.

The wire format and the two verbs a query needs are in `cidx.owner.wire`
(the verbs re-exported here, so this is the table of them all);
`cidx.operations` holds the one handler of each verb.
"""

from __future__ import annotations

from typing import Any

from cidx.messages import (
    ConfigSetRequest,
    FlushReport,
    FlushRequest,
    Health,
    IndexRequest,
    IndexSnapshot,
    IndexSummary,
    MigrateRequest,
    MigrationReport,
    MigrationRequest,
    NoArgs,
    PauseRequest,
    PauseState,
    ResumeRequest,
    ResumeResult,
    SnapshotRequest,
    StatusReport,
)
from cidx.metrics import MetricsSnapshot
from cidx.owner.wire import PING as PING, SEARCH as SEARCH, Verb

INDEX: Verb[IndexRequest, IndexSummary] = Verb("index", IndexRequest, IndexSummary)
STATUS: Verb[NoArgs, StatusReport] = Verb("status", NoArgs, StatusReport)
FLUSH: Verb[FlushRequest, FlushReport] = Verb("flush", FlushRequest, FlushReport)
PAUSE: Verb[PauseRequest, PauseState] = Verb("pause", PauseRequest, PauseState)
RESUME: Verb[ResumeRequest, ResumeResult] = Verb("resume", ResumeRequest, ResumeResult)
# Flush, hold writes, copy the index into a folder, resume (`cidx backup`).
SNAPSHOT: Verb[SnapshotRequest, IndexSnapshot] = Verb("snapshot", SnapshotRequest, IndexSnapshot)

# Start a collection migration and copy (`cidx collections migrate`); act on it.
MIGRATE: Verb[MigrateRequest, MigrationReport] = Verb("migrate", MigrateRequest, MigrationReport)
MIGRATION: Verb[MigrationRequest, MigrationReport] = Verb(
    "migration", MigrationRequest, MigrationReport
)

# Change a setting of the project's config (`cidx config set`), and migrate
# its collection when the setting names it.
CONFIG_SET: Verb[ConfigSetRequest, MigrationReport] = Verb(
    "config_set", ConfigSetRequest, MigrationReport
)

# What a live owner says of its index's freshness (`GET /healthz`), and its
# instruments (`GET /metrics`): a `cidx serve` answered through the daemon asks.
HEALTH: Verb[NoArgs, Health] = Verb("health", NoArgs, Health)
METRICS: Verb[NoArgs, MetricsSnapshot] = Verb("metrics", NoArgs, MetricsSnapshot)

VERBS: dict[str, Verb[Any, Any]] = {
    v.name: v
    for v in (
        PING,
        SEARCH,
        INDEX,
        STATUS,
        FLUSH,
        PAUSE,
        RESUME,
        SNAPSHOT,
        MIGRATE,
        MIGRATION,
        CONFIG_SET,
        HEALTH,
        METRICS,
    )
}
