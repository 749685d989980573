"""`/search`'s query string → a `QueryRequest`, with errors that name the HTTP parameters.

This module only reads strings (one value per parameter, numbers that are
numbers); every bound — limit, mode, globs, languages — is the core's
(`cidx.query.query_request`), relabelled with the parameter names.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from cidx.errors import InvalidQuery, UsageError
from cidx.messages import QueryRequest
from cidx.query import DEFAULT_LIMIT, query_request

SEARCH_PARAMS = ("q", "limit", "mode", "path", "lang", "min_score")
# The parameter of each `QueryRequest` field, for the errors of the query model.
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
    text = _single(params, "q") or ""
    if not text.strip():
        raise UsageError("Pass the text to search for as q, e.g. /search?q=retry+failed+uploads.")
    limit_text = _single(params, "limit")
    limit = DEFAULT_LIMIT
    if limit_text is not None:
        if not re.fullmatch(r"[+-]?[0-9]{1,9}", limit_text.strip()):
            raise UsageError(f"limit must be a whole number, not {limit_text!r}.")
        limit = int(limit_text)
    min_score_text = _single(params, "min_score")
    min_score: float | None = None
    if min_score_text is not None:
        try:
            min_score = float(min_score_text)
        except ValueError:
            raise UsageError(f"min_score must be a number, not {min_score_text!r}.") from None
    try:
        return query_request(
            text,
            limit=limit,
            mode=_single(params, "mode") or "hybrid",
            paths=params.get("path", []),
            languages=params.get("lang", []),
            min_score=min_score,
        )
    except InvalidQuery as exc:
        raise exc.relabel(SEARCH_LABELS) from None
