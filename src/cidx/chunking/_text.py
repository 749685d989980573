"""Line windows, the size limits every chunker obeys, and the file's line model.

This module owns the numbers that decide how big a chunk may be and how
oversized ranges are cut into overlapping windows; the code and markdown
chunkers call `split_range` for anything too large, and files with no better
chunker (json, yaml, toml, plain text, unknown) are chunked here entirely.
It also owns `SourceLines`, the one place that turns decoded text into
1-based lines, so every chunker agrees on what "line 12" means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cidx.chunking._types import Chunk

# A definition (or markdown section, or gap between definitions) larger than
# either limit is split into windows. The character cap also bounds chunks
# made of very long lines, such as minified code, which would otherwise
# reach the embedder as one enormous input.
MAX_CHUNK_LINES = 80
MAX_CHUNK_CHARS = 3_000
# A file with more than half of its characters in lines longer than this is
# minified or generated (a bundle, a one-line JSON or data dump): no chunk
# can hold such a line (it would be cut at MAX_CHUNK_CHARS), and what could
# be embedded of it only adds noise to search. Hand-written code and prose
# keep their lines far shorter; a source file with one long embedded string
# among ordinary lines stays indexed (that one line is cut).
MINIFIED_LINE_CHARS = MAX_CHUNK_CHARS
# Windows over an oversized range: long enough to hold a readable stretch of
# code, overlapping so a statement cut at a boundary is whole in one window.
WINDOW_LINES = 50
WINDOW_OVERLAP = 8
# Files chunked only by lines have no structure to respect, so smaller
# windows keep each chunk about one topic.
TEXT_WINDOW_LINES = 40
TEXT_WINDOW_OVERLAP = 5

# Lines that only close something: "}", "});", "end", "fi", "#endif", maybe
# with a trailing comment ("}  // namespace net"). As chunks of their own
# they are noise in search results.
_TRIVIAL_LINE = re.compile(
    r"\s*(?:(?:[)\]}]|(?:end|fi|done|esac)\b)(?:[\s()\[\]{};,.]|end\b)*(?:(?://|#|--|/\*).*)?"
    r"|#\s*endif\b.*)?"
)
_TRIVIAL_MAX_LINES = 3
_TRIVIAL_MAX_CHARS = 200


class SourceLines:
    """A file's lines, split on "\\n" only, after turning CRLF into LF.

    Only "\\n" separates lines because that is how tree-sitter counts rows and
    how editors and `grep -n` number lines; a lone "\\r" stays inside its line.
    Rows here are 0-based; chunks report them 1-based.
    """

    def __init__(self, text: str) -> None:
        self.text = text.replace("\r\n", "\n")
        lines = self.text.split("\n")
        if lines and lines[-1] == "":
            # "a\nb\n" has two lines, not three.
            lines.pop()
        self.lines = lines
        self.blank = [not line.strip() for line in lines]
        cum = [0]
        total = 0
        for line in lines:
            total += len(line) + 1
            cum.append(total)
        self._cum = cum

    def __len__(self) -> int:
        return len(self.lines)

    def chars(self, start: int, end: int) -> int:
        """Length of rows start..end joined with "\\n"."""
        return self._cum[end + 1] - self._cum[start] - 1

    def trim(self, start: int, end: int) -> tuple[int, int] | None:
        """The range without blank rows at either edge; None if all blank."""
        while start <= end and self.blank[start]:
            start += 1
        while end >= start and self.blank[end]:
            end -= 1
        return (start, end) if start <= end else None

    def is_trivial(self, start: int, end: int) -> bool:
        """Whether rows start..end are a few lines of closing braces or `end`s."""
        body = [self.lines[r] for r in range(start, end + 1) if not self.blank[r]]
        return (
            len(body) <= _TRIVIAL_MAX_LINES
            and self.chars(start, end) <= _TRIVIAL_MAX_CHARS
            and all(_TRIVIAL_LINE.fullmatch(line) for line in body)
        )

    def chunk(
        self, start: int, end: int, kind: str, symbol: str, meta: dict[str, Any] | None = None
    ) -> Chunk:
        text = "\n".join(self.lines[start : end + 1])
        # Only a single pathological line can exceed the cap (windows stop
        # before it otherwise); its tail is dropped rather than embedded.
        text = text[:MAX_CHUNK_CHARS]
        return Chunk(
            start_line=start + 1,
            end_line=end + 1,
            kind=kind,
            symbol=symbol,
            text=text,
            meta=dict(meta) if meta else {},
        )


def is_minified(src: SourceLines) -> bool:
    """Whether lines over `MINIFIED_LINE_CHARS` hold most of the file's text."""
    total = len(src.text)
    if total <= MINIFIED_LINE_CHARS:
        return False
    long_chars = sum(len(line) for line in src.lines if len(line) > MINIFIED_LINE_CHARS)
    return long_chars * 2 > total


@dataclass
class Piece:
    """A planned chunk: rows start..end (0-based, inclusive) and what it is."""

    start: int
    end: int
    kind: str
    symbol: str
    meta: dict[str, Any] = field(default_factory=dict)


def split_range(
    src: SourceLines,
    start: int,
    end: int,
    *,
    max_lines: int = MAX_CHUNK_LINES,
    window: int = WINDOW_LINES,
    overlap: int = WINDOW_OVERLAP,
) -> list[tuple[int, int]]:
    """Rows start..end as one trimmed range if small enough, else as windows.

    Windows hold at most `window` lines and `MAX_CHUNK_CHARS` characters
    (one line alone may exceed it; `SourceLines.chunk` truncates that one).
    Every non-blank row of the range is in at least one window, and no window
    begins or ends on a blank row.
    """
    trimmed = src.trim(start, end)
    if trimmed is None:
        return []
    start, end = trimmed
    if end - start + 1 <= max_lines and src.chars(start, end) <= MAX_CHUNK_CHARS:
        return [(start, end)]
    total = end - start + 1
    if total > window > overlap:
        # Spread the rows evenly over as many windows as the limit needs, so
        # the last one is not a sliver that mostly repeats its neighbour.
        count = -(-(total - overlap) // (window - overlap))
        window = max(overlap + 1, -(-(total + (count - 1) * overlap) // count))
    lines, blank = src.lines, src.blank
    out: list[tuple[int, int]] = []
    lo = start
    while lo <= end:
        while lo <= end and blank[lo]:
            lo += 1
        if lo > end:
            break
        hi = lo
        used = len(lines[lo])
        while hi < end and hi - lo + 1 < window:
            grown = used + 1 + len(lines[hi + 1])
            if grown > MAX_CHUNK_CHARS:
                break
            used = grown
            hi += 1
        last = hi
        while blank[last]:
            last -= 1
        out.append((lo, last))
        rest = hi + 1
        while rest <= end and blank[rest]:
            rest += 1
        if rest > end:
            break
        # Overlap is a fraction of the window so that windows shortened by
        # long lines do not repeat most of their rows in the next window.
        shared = min(overlap, (hi - lo + 1) // 4)
        lo = max(lo + 1, hi + 1 - shared)
    return out


def merge_trivial(src: SourceLines, pieces: list[Piece]) -> list[Piece]:
    """Fold pieces that are only closing braces into the piece before them.

    A class's closing "}" or a module's trailing "end" would otherwise be a
    chunk of its own. With nothing before it, such a piece folds into the
    next one; when folding would break the size limits it stays alone.
    Pieces are in file order and do not overlap, so moving one boundary onto
    rows nobody else owns keeps that true.
    """

    def fits(start: int, end: int) -> bool:
        return end - start + 1 <= MAX_CHUNK_LINES and src.chars(start, end) <= MAX_CHUNK_CHARS

    out: list[Piece] = []
    carry: int | None = None  # start row of a trivial piece folding forward
    for index, piece in enumerate(pieces):
        if carry is not None:
            piece.start, carry = carry, None
        elif src.is_trivial(piece.start, piece.end):
            if out and fits(out[-1].start, piece.end):
                out[-1].end = piece.end
                continue
            following = pieces[index + 1] if index + 1 < len(pieces) else None
            if not out and following is not None and fits(piece.start, following.end):
                carry = piece.start
                continue
        out.append(piece)
    return out


def chunk_text(src: SourceLines) -> list[Chunk]:
    """Line windows over a whole file, kind "text"."""
    if not src.lines:
        return []
    ranges = split_range(
        src,
        0,
        len(src) - 1,
        max_lines=TEXT_WINDOW_LINES,
        window=TEXT_WINDOW_LINES,
        overlap=TEXT_WINDOW_OVERLAP,
    )
    return [src.chunk(lo, hi, "text", "") for lo, hi in ranges]
