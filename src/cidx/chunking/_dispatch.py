"""Choosing the chunker for a file, and falling back to line windows.

Minified or generated files get no chunks at all; markdown,
reStructuredText and AsciiDoc go to the section chunker, languages with a
definition table to the tree-sitter chunker, everything else to line
windows. A chunker that
fails on some input (a grammar that will not load, a parser error, a bug
tripped by strange text) must not stop indexing: the file is then chunked
by line windows, which cannot fail, and the failure is logged.
"""

from __future__ import annotations

import logging

from cidx.chunking._code import chunk_code, has_spec
from cidx.chunking._filetypes import language_for_path
from cidx.chunking._markdown import chunk_asciidoc, chunk_markdown, chunk_rst
from cidx.chunking._text import SourceLines, chunk_text, is_minified
from cidx.chunking._types import Chunk, ChunkedFile

log = logging.getLogger(__name__)


def chunk_file(rel_path: str, text: str) -> ChunkedFile:
    """Chunk one file's decoded text. Never raises on odd input."""
    language = language_for_path(rel_path)
    src = SourceLines(text)
    if is_minified(src):
        return ChunkedFile(language=language, chunks=[], minified=True)
    chunks: list[Chunk]
    try:
        if language == "markdown":
            chunks = chunk_markdown(src)
        elif language == "rst":
            chunks = chunk_rst(src)
        elif language == "asciidoc":
            chunks = chunk_asciidoc(src)
        elif has_spec(language):
            chunks = chunk_code(language, src)
        else:
            chunks = chunk_text(src)
    except Exception:
        # Deliberately broad: a file the structured chunkers cannot handle is
        # still worth indexing, and line windows always work.
        log.warning(
            "Chunking %s as %s failed; using line windows.", rel_path, language, exc_info=True
        )
        chunks = chunk_text(src)
    return ChunkedFile(language=language, chunks=chunks)
