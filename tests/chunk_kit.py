"""Chunking test helpers: chunk a source and check what every chunker promises.

Every input chunked through `chunk` is checked against the invariants all
chunkers promise (text equals the lines, no blank chunks, full coverage of
non-blank lines, no overlap outside the windows of one range, bounded size)
and remembered in `SEEN` for a final re-check.
"""

from __future__ import annotations

import itertools
import textwrap

from cidx.chunking import Chunk, ChunkedFile, chunk_file
from cidx.chunking._code import has_spec
from cidx.chunking._text import (
    MAX_CHUNK_CHARS,
    MAX_CHUNK_LINES,
)

SEEN: list[tuple[str, str]] = []


def file_lines(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def check_invariants(rel_path: str, text: str, result: ChunkedFile) -> None:
    lines = file_lines(text)
    if result.minified:
        assert result.chunks == []
        return
    covered: set[int] = set()
    for c in result.chunks:
        assert 1 <= c.start_line <= c.end_line <= len(lines), c
        expected = "\n".join(lines[c.start_line - 1 : c.end_line])
        if c.start_line == c.end_line and len(expected) > MAX_CHUNK_CHARS:
            assert c.text == expected[:MAX_CHUNK_CHARS]  # one pathological line
        else:
            assert c.text == expected, c
            assert len(c.text) <= MAX_CHUNK_CHARS, c
        assert c.text.strip(), c
        assert "\r\n" not in c.text
        assert c.end_line - c.start_line + 1 <= MAX_CHUNK_LINES, c
        covered.update(range(c.start_line, c.end_line + 1))
    missing = [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered]
    assert not missing, f"{rel_path}: lines {missing[:10]} are in no chunk"
    ordered = sorted(result.chunks, key=lambda c: (c.start_line, c.end_line))
    assert ordered == result.chunks, "chunks are not in file order"
    for a, b in itertools.pairwise(ordered):
        if b.start_line <= a.end_line:
            # Only windows over one oversized range may share lines.
            assert (a.kind, a.symbol) == (b.kind, b.symbol), (a, b)


def chunk(rel_path: str, text: str, *, fallback_ok: bool = False) -> list[Chunk]:
    result = chunk_file(rel_path, text)
    check_invariants(rel_path, text, result)
    if not fallback_ok and (
        result.language in ("markdown", "rst", "asciidoc") or has_spec(result.language)
    ):
        # Line windows here would mean the structured chunker failed and the
        # dispatcher quietly fell back.
        assert all(c.kind != "text" for c in result.chunks), result
    SEEN.append((rel_path, text))
    return result.chunks


def kinds(rel_path: str, text: str) -> list[tuple[str, str]]:
    return [(c.kind, c.symbol) for c in chunk(rel_path, text)]


def by_symbol(chunks: list[Chunk], symbol: str) -> Chunk:
    matches = [c for c in chunks if c.symbol == symbol]
    assert len(matches) == 1, (symbol, [(c.kind, c.symbol) for c in chunks])
    return matches[0]


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")
