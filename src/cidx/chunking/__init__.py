"""Splitting a file's text into the chunks that are embedded and searched.

Code is chunked with tree-sitter at functions, methods and classes;
markdown, reStructuredText and AsciiDoc by section; everything else by line
windows. A file whose text is mostly in lines too long for any chunk (a
minified bundle, a one-line JSON dump) gives no chunks and is marked
`minified`. The result is deterministic:
the same text always gives the same chunks, which is what lets the indexer
reuse embeddings and keep point ids stable. Bump `CHUNKER_VERSION` whenever
the output for some input changes, so existing indexes are rebuilt.
"""

from cidx.chunking._text import MINIFIED_LINE_CHARS
from cidx.chunking._types import Chunk, ChunkedFile

# 2: minified or generated files (see `MINIFIED_LINE_CHARS`) give no chunks.
# 3: TS interfaces, type aliases and enums, and JS object literals of
#    functions, get their own kinds; reStructuredText and AsciiDoc by section.
CHUNKER_VERSION = 3

__all__ = [
    "CHUNKER_VERSION",
    "MINIFIED_LINE_CHARS",
    "Chunk",
    "ChunkedFile",
    "chunk_file",
    "detect_language",
    "languages_named",
]


def detect_language(rel_path: str) -> str:
    """The language name stored in the payload for `rel_path` (by file name)."""
    from cidx.chunking._filetypes import language_for_path

    return language_for_path(rel_path)


def languages_named(name: str) -> tuple[str, ...] | None:
    """The stored language names a user's `name` stands for ("golang", "ts",
    "TypeScript", "rs"...), or None when it names no language."""
    from cidx.chunking._filetypes import languages_named as _named

    return _named(name)


def chunk_file(rel_path: str, text: str) -> ChunkedFile:
    """Chunk one file's decoded text. Never raises on odd input."""
    from cidx.chunking._dispatch import chunk_file as _chunk_file

    return _chunk_file(rel_path, text)
