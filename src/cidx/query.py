"""What makes a query valid: the one place its bounds and its globs are checked.

Every front end — the CLI, `cidx serve`'s /search (which only reads its
strings first), the MCP `search` tool — builds its `QueryRequest` with
`query_request`, and the search checks every request it is given with
`validate_query` (requests also arrive through the owner socket). A bad
field raises `InvalidQuery`, which names the field; a front end relabels it
with its own name for that field (`--limit`, `limit`, …) and maps it to its
own form of error.

Path globs use .gitignore syntax. `rebase_globs` turns globs written
relative to a folder inside the project into root-relative ones, the way
`git grep` reads patterns given in a subfolder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cidx.answers import QUERY_MODES, QueryMode, QueryRequest
from cidx.errors import InvalidQuery

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "query_request",
    "rebase_globs",
    "validate_query",
]

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
_GLOB_EXAMPLES = "e.g. '*.py', 'src/', 'src/**/test_*.py'"


def query_request(
    text: str,
    *,
    limit: int = DEFAULT_LIMIT,
    mode: str = "hybrid",
    paths: Sequence[str] = (),
    languages: Sequence[str] = (),
    min_score: float | None = None,
) -> QueryRequest:
    """A checked `QueryRequest`; `InvalidQuery` names the first field that is off."""
    if mode not in QUERY_MODES:
        raise InvalidQuery("mode", f"must be one of {', '.join(QUERY_MODES)}, not {mode!r}.")
    checked_mode: QueryMode = mode  # narrowed by the check above
    request = QueryRequest(
        text=text.strip(),
        limit=limit,
        mode=checked_mode,
        paths=tuple(paths),
        languages=tuple(name.strip() for name in languages),
        min_score=min_score,
    )
    validate_query(request)
    return request


def validate_query(request: QueryRequest) -> None:
    """Raise `InvalidQuery` for the first field of `request` out of bounds."""
    if not request.text.strip():
        raise InvalidQuery(
            "text",
            'is empty. Give the text to search for, e.g. "retry failed uploads".',
            "The query",
        )
    if request.mode not in QUERY_MODES:
        raise InvalidQuery(
            "mode", f"must be one of {', '.join(QUERY_MODES)}, not {request.mode!r}."
        )
    if not 1 <= request.limit <= MAX_LIMIT:
        raise InvalidQuery("limit", f"must be between 1 and {MAX_LIMIT}, not {request.limit}.")
    if request.min_score is not None and not math.isfinite(request.min_score):
        raise InvalidQuery("min_score", f"must be a number, not {request.min_score!r}.")
    for name in request.languages:
        if not name.strip():
            raise InvalidQuery("languages", "has an empty value; give a language, e.g. python.")
    for glob in request.paths:
        check_glob(glob)


def check_glob(glob: str) -> None:
    """`InvalidQuery` for a path glob that .gitignore syntax cannot read."""
    if not glob.strip():
        raise InvalidQuery("paths", f"has an empty glob; give one, {_GLOB_EXAMPLES}.")
    import pathspec  # only queries with globs need it

    try:
        spec = pathspec.GitIgnoreSpec.from_lines([glob])
    except ValueError as exc:
        reason = str(exc.__cause__ or exc).rstrip(".")
    else:
        if all(pattern.include is not None for pattern in spec.patterns):
            return
        # git reads such a line as matching nothing: a search would silently
        # find nothing.
        reason = "it can match no path (an unclosed [ bracket, or a # comment)"
    raise InvalidQuery(
        "paths",
        f"has a glob that cannot be used, {glob!r}: {reason}. Use .gitignore syntax, "
        f"{_GLOB_EXAMPLES}.",
    ) from None


def rebase_globs(globs: Sequence[str], base: str) -> tuple[str, ...]:
    """Globs written in the folder `base` (root-relative, "" for the root) as
    root-relative .gitignore globs.

    As in a .gitignore file in `base`: a glob with no slash but a trailing one
    matches at any depth below `base`, one with a slash inside is anchored at
    `base`, and one starting with "/" is anchored at the project root.
    A leading "!" is kept.
    """
    base = base.strip("/")
    out: list[str] = []
    for glob in globs:
        negated = glob.startswith("!")
        body = glob[1:] if negated else glob
        if body.startswith("/") or not base:
            rebased = body
        elif "/" in body.rstrip("/"):
            rebased = f"/{base}/{body}"
        else:
            rebased = f"/{base}/**/{body}"
        out.append(("!" if negated else "") + rebased)
    return tuple(out)
