"""`/search`'s query string → a `QueryRequest`, with errors that name the HTTP parameters.

One function, `search_request`, so the validation can move into a request
model of the core later without touching the server.
"""

from __future__ import annotations

import math
import re
from typing import cast
from urllib.parse import parse_qs

from cidx.errors import UsageError
from cidx.messages import QueryMode, QueryRequest
from cidx.query import MAX_LIMIT  # checked here too, so errors name the HTTP parameter

SEARCH_PARAMS = ("q", "limit", "mode", "path", "lang", "min_score")
# The parameter of each `QueryRequest` field, for the search's own errors.
SEARCH_LABELS = {"text": "q", "paths": "path", "languages": "lang"}

Params = dict[str, list[str]]


def parse_query(query: str) -> Params:
    """A query string's parameters, each with every value it was given."""
    try:
        return parse_qs(query, keep_blank_values=True, errors="strict", max_num_fields=100)
    except UnicodeDecodeError:
        raise UsageError("The query string is not valid UTF-8 once percent-decoded.") from None
    except ValueError:
        raise UsageError("The query string has too many parameters (at most 100).") from None


def _single(params: Params, name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise UsageError(f"Give {name} once, not {len(values)} times.")
    return values[0]


def search_request(params: Params) -> QueryRequest:
    """The `QueryRequest` of `/search`'s parameters; UsageError on anything off."""
    unknown = sorted(set(params) - set(SEARCH_PARAMS))
    if unknown:
        raise UsageError(
            f"Unknown parameter {unknown[0]!r}. /search takes: {', '.join(SEARCH_PARAMS)}."
        )
    text = (_single(params, "q") or "").strip()
    if not text:
        raise UsageError("Pass the text to search for as q, e.g. /search?q=retry+failed+uploads.")
    limit_text = _single(params, "limit")
    limit = 10
    if limit_text is not None:
        if not re.fullmatch(r"[+-]?[0-9]{1,9}", limit_text.strip()):
            raise UsageError(f"limit must be a whole number, not {limit_text!r}.")
        limit = int(limit_text)
        if not 1 <= limit <= MAX_LIMIT:
            raise UsageError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}.")
    min_score_text = _single(params, "min_score")
    min_score: float | None = None
    if min_score_text is not None:
        try:
            min_score = float(min_score_text)
        except ValueError:
            min_score = math.nan
        if not math.isfinite(min_score):
            raise UsageError(f"min_score must be a number, not {min_score_text!r}.")
    for name in ("path", "lang"):
        if any(not value.strip() for value in params.get(name, [])):
            raise UsageError(f"A {name} parameter is empty; give a value or leave it out.")
    return QueryRequest(
        text=text,
        limit=limit,
        # Checked by the search itself, like every other field of a query.
        mode=cast("QueryMode", _single(params, "mode") or "hybrid"),
        paths=tuple(params.get("path", [])),
        languages=tuple(params.get("lang", [])),
        min_score=min_score,
    )
