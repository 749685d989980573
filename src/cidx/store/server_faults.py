"""How the Qdrant server backend reads a failure: retry it or explain it.

`ServerStore` retries a request only when its failure is transient (a
refused or reset connection, a timeout, 429, 502, 503, 504: `transient`),
and turns every other failure into one `StoreError` or `ServerError` whose
message names the server, the collection and the next step (`describe`),
in the server's own words where it gave any. httpx failures of the
snapshot transfers are raised as qdrant-client raises its own (`wrapped`),
so this one mapping covers both.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
from pydantic import ValidationError
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from cidx.errors import ServerError, StoreError
from cidx.store.server_settings import API_KEY_ENV, api_key_file

__all__ = [
    "TRANSIENT_STATUS",
    "Failure",
    "already_exists",
    "describe",
    "quiet",
    "reason",
    "transient",
    "wrapped",
]

# HTTP answers that mean "try again later".
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class Failure:
    """What was being done, and where, when a request failed."""

    what: str
    collection: str | None
    where: str  # "the Qdrant server at URL", or the local-mode folder
    tries: int
    key_source: str | None  # where the API key came from (never the key)
    timeout: float
    local: bool


def describe(failure: Failure, exc: Exception) -> StoreError:
    """The error to raise for `exc`, a request that failed for good."""
    where = failure.where
    subject = where[0].upper() + where[1:]
    status = exc.status_code if isinstance(exc, UnexpectedResponse) else None
    detail = server_detail(exc)
    if status in (401, 403):
        key = (
            f"the API key {failure.key_source}"
            if failure.key_source
            else "the request: no API key was given"
        )
        return ServerError(
            f"{subject} refused {key} (HTTP {status}). Set the right "
            f"key in ${API_KEY_ENV} or in {api_key_file()} (readable by you only: chmod "
            "600), then run the command again."
        )
    missing = status == 404 or (
        failure.local and isinstance(exc, ValueError) and "not found" in str(exc)
    )
    if missing and failure.collection is not None:
        return StoreError(
            f"The collection {failure.collection} does not exist on {where}. Run `cidx index` to "
            "rebuild it."
        )
    if isinstance(exc, ResponseHandlingException) and isinstance(exc.source, httpx.HTTPError):
        source = exc.source
        text = str(source)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return ServerError(
                f"The TLS certificate of {where} could not be verified ({reason(exc)}). If "
                "the server uses a private certificate authority, give its PEM file: "
                '`cidx init --qdrant-ca-file FILE` (or "ca_file" in the "server" block '
                "of .code-indexer/config.json)."
            )
        if isinstance(source, httpx.ConnectError | httpx.ConnectTimeout):
            return ServerError(
                f"Cannot reach {where} ({reason(exc)}; {failure.tries} attempts). Check that the "
                "server runs and that this machine can reach it (the URL is in "
                ".code-indexer/config.json), then run the command again."
            )
        if isinstance(source, httpx.TimeoutException):
            return ServerError(
                f"{subject} did not answer within "
                f"{failure.timeout:g} s ({failure.what}; {failure.tries} attempts). It may be "
                'overloaded: try again, or raise `"timeout"` in the "server" block of '
                ".code-indexer/config.json."
            )
        return ServerError(
            f"The connection to {where} failed while trying to {failure.what} ({reason(exc)}; "
            f"{failure.tries} attempts). Check the server and the network, then run the command "
            "again."
        )
    if isinstance(exc, ResponseHandlingException | json.JSONDecodeError | ValidationError):
        # An answer that is not Qdrant's JSON: another service on that port.
        return ServerError(
            f"{subject} did not answer like a Qdrant server ({detail}). "
            "Check the URL in .code-indexer/config.json."
        )
    if isinstance(exc, ResourceExhaustedResponse) or status in TRANSIENT_STATUS:
        return ServerError(
            f"{subject} is overloaded or unavailable ({detail}; {failure.tries} "
            "attempts). Try again later, or check the server's health."
        )
    target = f" on collection {failure.collection}" if failure.collection else ""
    code = f" (HTTP {status})" if status else ""
    return StoreError(
        f"{subject} refused to {failure.what}{target}: {detail}{code}. Check "
        "the server's log for the cause."
    )


def wrapped(fn: Callable[[], None]) -> Callable[[], None]:
    """`fn` with httpx's own failures raised as qdrant-client raises them, so one
    error mapping covers both."""

    def run() -> None:
        try:
            fn()
        except httpx.HTTPError as exc:
            raise ResponseHandlingException(exc) from exc

    return run


@contextlib.contextmanager
def quiet(local: bool) -> Iterator[None]:
    """Local mode warns about what it leaves out (payload indexes, large
    collections); cidx knows, and its users should not see those warnings."""
    if not local:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def transient(exc: Exception) -> float | None:
    """Seconds to wait before trying again (0: the usual backoff), or None when
    `exc` is not worth another attempt."""
    if isinstance(exc, ResourceExhaustedResponse):
        return float(min(max(exc.retry_after_s, 0), 60))
    if isinstance(exc, UnexpectedResponse):
        return 0.0 if exc.status_code in TRANSIENT_STATUS else None
    if isinstance(exc, ResponseHandlingException) and isinstance(exc.source, httpx.HTTPError):
        text = str(exc.source)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return None
        if isinstance(
            exc.source,
            httpx.TransportError,  # connect/read/write errors and timeouts
        ) and not isinstance(exc.source, httpx.UnsupportedProtocol | httpx.ProxyError):
            return 0.0
    return None


def reason(exc: Exception) -> str:
    if isinstance(exc, ResponseHandlingException):
        source = exc.source
        text = str(source).strip() or type(source).__name__
        return text.splitlines()[0][:300]
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def server_detail(exc: Exception) -> str:
    """What the server said, in its own words (without the request)."""
    if isinstance(exc, UnexpectedResponse):
        try:
            body = json.loads(exc.content)
            error = body.get("status", {}).get("error") if isinstance(body, dict) else None
        except (ValueError, AttributeError):
            error = None
        text = error or exc.content.decode("utf-8", "replace").strip() or exc.reason_phrase
        return text.splitlines()[0][:300] if text else f"HTTP {exc.status_code}"
    return reason(exc)


def already_exists(exc: Exception) -> bool:
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code == 409 or "already exists" in server_detail(exc)
    return "already exists" in str(exc)
