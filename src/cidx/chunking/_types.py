"""The chunk record shared by every chunker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """A contiguous range of lines of one file, with what it defines."""

    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    # "function", "method", "class", "module" (code between definitions),
    # "section" (markdown), "text" (line window of any other file)
    kind: str
    # Qualified name: "Session.request", "outer.inner", "Install > From source";
    # "" when the chunk defines nothing.
    symbol: str
    text: str  # exactly the file's lines start_line..end_line, joined with "\n"
    # Extra payload, e.g. {"tags": [...], "aliases": [...]} from markdown front matter.
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkedFile:
    language: str  # e.g. "python", "typescript", "markdown", "text"
    chunks: list[Chunk]
    # Minified or generated code or data (see `_text.is_minified`): no chunks,
    # and the indexer reports the file as skipped rather than empty.
    minified: bool = False
