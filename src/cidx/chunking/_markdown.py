"""Prose chunked by section: markdown, reStructuredText and AsciiDoc.

A section runs from one heading to the next, and its symbol is the path of
headings above it ("Install > From source"). Markdown headings are ATX
(`## Title`) or setext (`Title` over `---`), and YAML front matter is read
for `title`, `tags` and `aliases` (its lines join the first section rather
than being a chunk of their own). reStructuredText titles are underlined
(and maybe overlined) with punctuation, their levels in the order the
styles first appear; AsciiDoc's are `== Title` lines. Lines that look like
headings inside code blocks (fenced, literal, delimited) are not headings.
Sections that are too big are windowed like code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cidx.chunking._text import Piece, SourceLines, split_range
from cidx.chunking._types import Chunk

_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
# Lines that cannot be the text of a setext heading: list items, quotes,
# tables and thematic breaks would otherwise turn "---" below them into one.
_NOT_SETEXT_TEXT = re.compile(r" {0,3}(?:[-*+>|]|\d+[.)]\s|#{1,6}(?:\s|$))")
# Front matter is a few lines of metadata; a "---" closing hundreds of lines
# below the first is a thematic break, and not worth a YAML parse.
_FRONT_MATTER_MAX_LINES = 500


@dataclass
class _Heading:
    row: int  # first row of the heading (the text row of a setext heading)
    level: int
    title: str


def _front_matter(src: SourceLines) -> tuple[int, dict[str, Any]]:
    """Rows taken by front matter (0 if none), and the fields kept from it."""
    lines = src.lines
    if not lines or lines[0].rstrip() != "---":
        return 0, {}
    for row in range(1, min(len(lines), _FRONT_MATTER_MAX_LINES)):
        if lines[row].rstrip() in ("---", "..."):
            break
    else:
        return 0, {}  # never closed: an ordinary thematic break
    try:
        import yaml  # only files with front matter pay for it

        data = yaml.safe_load("\n".join(lines[1:row]))
    except Exception:
        # Broken YAML is still front matter, just unreadable. Not only
        # YAMLError: `date: 2020-13-45` raises ValueError from the loader.
        data = None
    return row + 1, data if isinstance(data, dict) else {}


def _string_list(value: object, *, split_words: bool) -> list[str]:
    """Front matter `tags: [a, b]`, `tags: a, b` or `tags: a` as a list."""
    items: list[object]
    if isinstance(value, str):
        parts = re.split(r"[,\s]+" if split_words else r",", value)
        items = list(parts)
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return []
    out: list[str] = []
    for item in items:
        if item is None or isinstance(item, dict | list | tuple):
            continue
        text = str(item).strip()
        if split_words:
            text = text.lstrip("#")
        if text and text not in out:
            out.append(text)
    return out


def _meta(fields: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if "tags" in fields:
        meta["tags"] = _string_list(fields["tags"], split_words=True)
    if "aliases" in fields:
        meta["aliases"] = _string_list(fields["aliases"], split_words=False)
    return meta


def _headings(src: SourceLines, first: int) -> list[_Heading]:
    lines = src.lines
    found: list[_Heading] = []
    fence: str | None = None
    previous_is_text = False  # the row above could be a setext heading's text
    for row in range(first, len(lines)):
        line = lines[row]
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence) and stripped.strip(fence[0]) == "":
                fence = None
            previous_is_text = False
            continue
        opening = _FENCE.fullmatch(line)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence = opening.group(1)
            previous_is_text = False
            continue
        atx = _ATX.fullmatch(line)
        if atx:
            found.append(_Heading(row, len(atx.group(1)), (atx.group(2) or "").strip()))
            previous_is_text = False
            continue
        underline = _SETEXT.fullmatch(line)
        if underline and previous_is_text:
            level = 1 if underline.group(1)[0] == "=" else 2
            found.append(_Heading(row - 1, level, lines[row - 1].strip()))
            previous_is_text = False
            continue
        previous_is_text = bool(line.strip()) and not _NOT_SETEXT_TEXT.match(line)
        if line.startswith(("    ", "\t")) and row > first and src.blank[row - 1]:
            previous_is_text = False  # an indented code block, not a paragraph
    return found


# reStructuredText: a title's underline (or overline) is one punctuation
# character repeated; docutils accepts any of these.
_RST_ADORNMENT = re.compile(r"([=\-`:'\"~^_*+#<>.])\1{2,}[ \t]*")
_ASCIIDOC_TITLE = re.compile(r"(={1,6}|#{1,6})[ \t]+(\S.*?)[ \t]*(?:[ \t]=+)?[ \t]*")
# AsciiDoc delimited blocks (listing, literal, example, sidebar, quote,
# passthrough, comment) and markdown-style fences: no titles inside.
_ASCIIDOC_BLOCK = re.compile(r"(-{4,}|\.{4,}|={4,}|\*{4,}|_{4,}|\+{4,}|/{4,}|`{3,})[ \t]*")


def _rst_headings(src: SourceLines, first: int) -> list[_Heading]:
    lines = src.lines
    styles: list[tuple[str, bool]] = []  # (character, overlined) in order of appearance
    found: list[_Heading] = []
    row = first
    while row + 1 < len(lines):
        text, under = lines[row], lines[row + 1]
        adornment = _RST_ADORNMENT.fullmatch(under)
        title = text.strip()
        if (
            adornment
            and title
            and not text[0].isspace()  # indented: a quote or literal block
            and not _RST_ADORNMENT.fullmatch(text)
            and len(under.rstrip()) >= min(len(title), 4)
        ):
            over = row > first and lines[row - 1].rstrip() == under.rstrip()
            style = (adornment.group(1), over)
            if style not in styles:
                styles.append(style)
            found.append(_Heading(row - 1 if over else row, styles.index(style) + 1, title))
            row += 2
            continue
        row += 1
    return found


def _asciidoc_headings(src: SourceLines, first: int) -> list[_Heading]:
    found: list[_Heading] = []
    block: str | None = None
    for row in range(first, len(src.lines)):
        line = src.lines[row]
        delimiter = _ASCIIDOC_BLOCK.fullmatch(line)
        if block is not None:
            if line.rstrip() == block:
                block = None
            continue
        if delimiter:
            block = line.rstrip()
            continue
        title = _ASCIIDOC_TITLE.fullmatch(line)
        if title:
            found.append(_Heading(row, len(title.group(1)), title.group(2)))
    return found


def chunk_rst(src: SourceLines) -> list[Chunk]:
    return _chunk_sections(src, 0, {}, _rst_headings(src, 0))


def chunk_asciidoc(src: SourceLines) -> list[Chunk]:
    return _chunk_sections(src, 0, {}, _asciidoc_headings(src, 0))


def chunk_markdown(src: SourceLines) -> list[Chunk]:
    if not src.lines:
        return []
    body_start, fields = _front_matter(src)
    return _chunk_sections(src, body_start, fields, _headings(src, body_start))


def _chunk_sections(
    src: SourceLines, body_start: int, fields: dict[str, Any], headings: list[_Heading]
) -> list[Chunk]:
    if not src.lines:
        return []
    meta = _meta(fields)
    title = fields.get("title")

    pieces: list[Piece] = []
    last = len(src) - 1
    first_heading = headings[0].row if headings else last + 1
    preamble = src.trim(body_start, first_heading - 1)
    section_start = 0 if preamble is not None or not headings else None
    if section_start is not None:
        # Text before the first heading (and the front matter above it).
        symbol = title.strip() if isinstance(title, str) else ""
        pieces.append(Piece(0, first_heading - 1, "section", symbol))

    path: list[_Heading] = []
    for index, heading in enumerate(headings):
        while path and path[-1].level >= heading.level:
            path.pop()
        path.append(heading)
        end = headings[index + 1].row - 1 if index + 1 < len(headings) else last
        start = 0 if index == 0 and section_start is None else heading.row
        symbol = " > ".join(h.title for h in path if h.title)
        pieces.append(Piece(start, end, "section", symbol))

    pieces = _fold_bare_headings(src, pieces, headings)
    chunks: list[Chunk] = []
    for piece in pieces:
        for lo, hi in split_range(src, piece.start, piece.end):
            chunks.append(src.chunk(lo, hi, "section", piece.symbol, meta))
    return chunks


def _fold_bare_headings(
    src: SourceLines, pieces: list[Piece], headings: list[_Heading]
) -> list[Piece]:
    """A heading followed directly by a subheading joins the subsection.

    "# Project" alone would be a one-line chunk; inside the first subsection's
    chunk it still reads as context, and the subsection's symbol already
    names it.
    """
    by_row = {h.row: h for h in headings}
    out: list[Piece] = []
    carry: int | None = None
    for index, piece in enumerate(pieces):
        heading = by_row.get(_first_content_row(src, piece))
        if carry is not None:
            piece.start = carry
            carry = None
        nxt = pieces[index + 1] if index + 1 < len(pieces) else None
        if heading is not None and nxt is not None:
            below = by_row.get(_first_content_row(src, nxt))
            content = src.trim(heading.row, piece.end)
            heading_rows = 2 if _is_setext(src, heading) else 1
            bare = content is not None and content[1] < heading.row + heading_rows
            if bare and below is not None and below.level > heading.level:
                carry = piece.start
                continue
        out.append(piece)
    return out


def _first_content_row(src: SourceLines, piece: Piece) -> int:
    trimmed = src.trim(piece.start, piece.end)
    return trimmed[0] if trimmed is not None else -1


def _is_setext(src: SourceLines, heading: _Heading) -> bool:
    """A heading whose text has a line of adornment below it (markdown setext, rst)."""
    row = heading.row
    if row + 1 >= len(src.lines):
        return False
    below = src.lines[row + 1]
    if _RST_ADORNMENT.fullmatch(src.lines[row]):  # an overlined rst title: text is next
        return True
    return bool(_SETEXT.fullmatch(below) or _RST_ADORNMENT.fullmatch(below))
