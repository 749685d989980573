"""The owner socket's wire format: typed requests and replies as JSON lines.

A client sends one request line, `{"v": 1, "op": ..., "args": {...}}`, and
reads reply lines until a final one: any number of
`{"type": "progress", "data": Progress}`, then exactly one of
`{"type": "result", "data": ...}` or
`{"type": "error", "class": "UsageError", "message": "..."}`.
Payloads are the dataclasses of `cidx.messages`, so the CLI renders an
answer from the owner exactly as one computed in-process.

Each operation is a `Verb`: its name and its typed request and result.
The two a query needs (PING, SEARCH) are declared here, with the codec, so
that a `cidx query` answered by an owner loads nothing more;
`cidx.owner.protocol` declares the rest and the table of them all.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from cidx.answers import NoArgs, OwnerState, Progress, SearchOutcome, SearchRequest
from cidx.errors import UsageError

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
    """`data` (parsed JSON) as an instance of `tp`, checked against its type
    hints; ValueError naming the field when it does not fit.

    Written out rather than left to a validation library: every client
    decodes its answer here, and a `cidx query` answered by an owner should
    not pay a large import to do so. Unknown fields are ignored (an older
    client talking to a newer owner); missing ones take their defaults.
    """
    result: T = _decode(tp, data, tp.__name__)
    return result


_hints: dict[type, dict[str, Any]] = {}
_NONE = type(None)


def _decode(tp: Any, data: Any, where: str) -> Any:
    if tp is Any:
        return data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, data, where)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if data is None and _NONE in options:
            return None
        for option in options:
            if option is _NONE:
                continue
            try:
                return _decode(option, data, where)
            except ValueError:
                continue
        raise ValueError(f"{where}: {data!r} is none of {tp}")
    if origin is Literal:
        if data in get_args(tp):
            return data
        raise ValueError(f"{where}: {data!r} is not one of {get_args(tp)}")
    if origin in (list, tuple):
        if not isinstance(data, list | tuple):
            raise ValueError(f"{where}: expected a list, not {data!r}")
        args = get_args(tp)
        if origin is list:
            return [_decode(args[0], x, f"{where}[{i}]") for i, x in enumerate(data)]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], x, f"{where}[{i}]") for i, x in enumerate(data))
        if len(args) != len(data):
            raise ValueError(f"{where}: expected {len(args)} items, not {len(data)}")
        return tuple(
            _decode(a, x, f"{where}[{i}]") for i, (a, x) in enumerate(zip(args, data, strict=True))
        )
    if origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object, not {data!r}")
        key, value = get_args(tp)
        return {_decode(key, k, where): _decode(value, v, f"{where}.{k}") for k, v in data.items()}
    if tp is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if tp is int and isinstance(data, int) and not isinstance(data, bool):
        return data
    if tp in (str, bool, _NONE) and isinstance(data, tp):
        return data
    raise ValueError(f"{where}: {data!r} is not a {getattr(tp, '__name__', tp)}")


def _decode_dataclass(tp: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, not {data!r}")
    hints = _hints.get(tp)
    if hints is None:
        hints = _hints[tp] = typing.get_type_hints(tp)
    values = {}
    for f in dataclasses.fields(tp):
        if f.name in data:
            values[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"{where}: {f.name} is missing")
    return tp(**values)


Handler = Callable[[Any, Callable[[Progress], None]], Any]


def dispatch(
    table: dict[str, Handler],
    verb: Verb[Any, R],
    args: Any,
    progress: Callable[[Progress], None],
    answerer: str,
) -> R:
    """Run the handler `table` has for `verb` (`answerer` names who lacks one)."""
    handler = table.get(verb.name)
    if handler is None:
        raise UsageError(f"{answerer} does not answer the request {verb.name!r}.")
    result: R = handler(args, progress)
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
