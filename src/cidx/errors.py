"""The exceptions cidx raises on purpose, and the exit code each maps to.

Every message is a full sentence that says what went wrong, where, and what
to do next. Only the CLI turns these into stderr text and an exit code;
anything else that escapes keeps its traceback, because it is a bug.

    CidxError
    ├── ConfigError          config.json missing fields, wrong types, newer schema
    ├── StateError           state.db unreadable or from a newer cidx
    ├── ModelError           the bundled model is missing or corrupt
    ├── StoreError           the vector store refused an operation
    │   ├── StoreDamagedError    the store's files are damaged (`cidx index` rebuilds it)
    │   └── ServerError          the Qdrant server cannot be used: unreachable, refused
    │                            the API key or the TLS certificate, unsupported version
    ├── DiskFullError        no room left on the disk holding the index
    ├── LockBusyError        another process owns the index (--no-wait, --wait-timeout)
    ├── OwnerError           the owner process failed or went away mid-request
    ├── AccessError          no permission to create or write the index
    ├── NoIndexError         a read-only command found no index to read
    ├── MigrationError       a migration of the index failed (and was rolled back)
    ├── ArchiveError         a backup archive is damaged, hostile or cannot be restored here
    └── UsageError           a value the user passed cannot be used
        └── InvalidQuery     one field of a query is out of bounds (names the field)
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of the `cidx` command."""

    OK = 0
    ERROR = 1
    USAGE = 2
    CONFIG = 3
    STATE = 4
    MODEL = 5
    STORE = 6
    BUSY = 7
    OWNER = 8
    ACCESS = 9
    NO_INDEX = 10
    DISK_FULL = 11
    # `cidx doctor` found problems that it did not (or could not) repair.
    UNHEALTHY = 12
    # A migration of the index (a move between stores) failed and was rolled back.
    MIGRATION = 13
    # A backup archive is damaged, incomplete, unsafe or incompatible.
    ARCHIVE = 14
    INTERRUPTED = 130


class CidxError(Exception):
    """Base of every error cidx raises on purpose."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CidxError):
    exit_code = ExitCode.CONFIG


class StateError(CidxError):
    exit_code = ExitCode.STATE


class ModelError(CidxError):
    exit_code = ExitCode.MODEL


class StoreError(CidxError):
    exit_code = ExitCode.STORE


class StoreDamagedError(StoreError):
    """The store's files cannot be read back: `cidx index` moves them aside and rebuilds."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        # What the engine said, without the advice around it.
        self.detail = detail or message


class ServerError(StoreError):
    """The Qdrant server cannot be used at all (as opposed to refusing one operation)."""


class DiskFullError(CidxError):
    exit_code = ExitCode.DISK_FULL


class LockBusyError(CidxError):
    exit_code = ExitCode.BUSY


class OwnerError(CidxError):
    exit_code = ExitCode.OWNER


class AccessError(CidxError):
    exit_code = ExitCode.ACCESS


class NoIndexError(CidxError):
    exit_code = ExitCode.NO_INDEX


class MigrationError(CidxError):
    exit_code = ExitCode.MIGRATION


class ArchiveError(CidxError):
    exit_code = ExitCode.ARCHIVE


class UsageError(CidxError):
    exit_code = ExitCode.USAGE


class InvalidQuery(UsageError):
    """A query field the user gave is out of bounds.

    `field` is the field of `QueryRequest` ("limit", "paths", ...) and
    `problem` the rest of the sentence ("must be between 1 and 1000, not 0"),
    so each front end can name the field its own way (`--limit`, `limit=`).
    """

    def __init__(self, field: str, problem: str, label: str | None = None) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{label or field} {problem}")

    def relabel(self, labels: dict[str, str]) -> InvalidQuery:
        """The same error, naming the field as `labels` does (unchanged if absent)."""
        return InvalidQuery(self.field, self.problem, labels.get(self.field, self.field))


# Names an error crosses the owner socket with, so the client can raise the
# same class the owner raised (each is built from its message alone).
ERROR_CLASSES: dict[str, type[CidxError]] = {
    cls.__name__: cls
    for cls in (
        CidxError,
        ConfigError,
        StateError,
        ModelError,
        StoreError,
        StoreDamagedError,
        ServerError,
        DiskFullError,
        LockBusyError,
        OwnerError,
        AccessError,
        NoIndexError,
        MigrationError,
        ArchiveError,
        UsageError,
    )
}


def wire_name(exc: CidxError) -> str:
    """The class an error crosses the owner socket as: its own, or the nearest
    base the client can rebuild from the message alone."""
    for cls in type(exc).__mro__:
        if cls.__name__ in ERROR_CLASSES:
            return cls.__name__
    return CidxError.__name__
