"""The exceptions cidx raises on purpose, and the exit code each maps to.

Every message is a full sentence that says what went wrong, where, and what
to do next. Only the CLI turns these into stderr text and an exit code;
anything else that escapes keeps its traceback, because it is a bug.

    CidxError
    ├── ConfigError          config.json missing fields, wrong types, newer schema
    ├── StateError           state.db unreadable or from a newer cidx
    ├── ModelError           the bundled model is missing or corrupt
    ├── StoreError           the vector store refused an operation
    │   └── StoreDamagedError    the store's files are damaged (`cidx index` rebuilds it)
    ├── DiskFullError        no room left on the disk holding the index
    ├── LockBusyError        another process owns the index (with --no-wait)
    ├── OwnerError           the owner process failed or went away mid-request
    └── UsageError           a value the user passed cannot be used
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
    DISK_FULL = 9
    # `cidx doctor` found problems that it did not (or could not) repair.
    UNHEALTHY = 10
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


class DiskFullError(CidxError):
    exit_code = ExitCode.DISK_FULL


class LockBusyError(CidxError):
    exit_code = ExitCode.BUSY


class OwnerError(CidxError):
    exit_code = ExitCode.OWNER


class UsageError(CidxError):
    exit_code = ExitCode.USAGE


# Names an error crosses the owner socket with, so the client can raise the
# same class the owner raised.
ERROR_CLASSES: dict[str, type[CidxError]] = {
    cls.__name__: cls
    for cls in (
        CidxError,
        ConfigError,
        StateError,
        ModelError,
        StoreError,
        StoreDamagedError,
        DiskFullError,
        LockBusyError,
        OwnerError,
        UsageError,
    )
}
