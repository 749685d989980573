"""The owner socket's wire format: typed requests and replies as JSON lines.

A client sends one request line, `{"v": 1, "op": ..., "args": {...}}`, and
reads reply lines until a final one: any number of
`{"type": "progress", "data": Progress}`, then exactly one of
`{"type": "result", "data": ...}` or
`{"type": "error", "class": "UsageError", "message": "..."}`.
Payloads are the dataclasses of `cidx.messages`, so the CLI renders an
answer from the owner exactly as one computed in-process.

Each operation is a `Verb` declared here once: its name and its typed
request and result. `cidx.operations` holds the one handler of each.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from cidx.messages import (
    FlushReport,
    FlushRequest,
    IndexRequest,
    IndexSnapshot,
    IndexSummary,
    MigrateRequest,
    MigrationReport,
    MigrationRequest,
    NoArgs,
    OwnerState,
    PauseRequest,
    PauseState,
    Progress,
    ResumeRequest,
    ResumeResult,
    SearchOutcome,
    SearchRequest,
    SnapshotRequest,
    StatusReport,
)

PROTOCOL_VERSION = 1
MAX_LINE = 64 * 1024 * 1024

T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True)
class Verb(Generic[A, R]):
    """One operation an index answers: its name, request type and result type."""

    name: str
    args: type[A]
    result: type[R]


PING: Verb[NoArgs, OwnerState] = Verb("ping", NoArgs, OwnerState)
SEARCH: Verb[SearchRequest, SearchOutcome] = Verb("search", SearchRequest, SearchOutcome)
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

VERBS: dict[str, Verb[Any, Any]] = {
    v.name: v
    for v in (PING, SEARCH, INDEX, STATUS, FLUSH, PAUSE, RESUME, SNAPSHOT, MIGRATE, MIGRATION)
}
_adapters: dict[Any, TypeAdapter[Any]] = {}


def _adapter(tp: Any) -> TypeAdapter[Any]:
    adapter = _adapters.get(tp)
    if adapter is None:
        adapter = _adapters[tp] = TypeAdapter(tp)
    return adapter


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        data = {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return data
    if isinstance(obj, list | tuple):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    return obj


def from_jsonable(tp: type[T], data: Any) -> T:
    result: T = _adapter(tp).validate_python(data)
    return result


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def request(op: str, args: Any = None) -> bytes:
    return encode({"v": PROTOCOL_VERSION, "op": op, "args": to_jsonable(args)})


def progress(p: Progress) -> bytes:
    return encode({"type": "progress", "data": to_jsonable(p)})


def result(data: Any) -> bytes:
    return encode({"type": "result", "data": to_jsonable(data)})


def error(class_name: str, message: str) -> bytes:
    return encode({"type": "error", "class": class_name, "message": message})


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a protocol message must be a JSON object")
    return message
