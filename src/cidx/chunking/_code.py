"""The tree-sitter chunker: source code cut at functions, methods and classes.

A file is parsed once, its definitions are collected into a tree (classes
hold their methods and nested classes; functions hold nothing, their nested
functions stay in their text), and the tree is laid out over the file's
lines: one chunk per function or method, a header chunk per class (its
signature, docstring and attributes, up to its first method), and "module"
chunks for the code between top-level definitions. Comments, decorators and
attributes directly above a definition belong to it. Every non-blank line
ends up in exactly one chunk, or in overlapping windows of one oversized
range. What counts as a definition in each language is in `_languages`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import cast

from tree_sitter import Node, Parser
from tree_sitter_language_pack import SupportedLanguage, get_parser

from cidx.chunking._definitions import (
    CONTAINER_CATEGORIES,
    Category,
    LanguageSpec,
    classify,
)
from cidx.chunking._languages import SPECS
from cidx.chunking._text import Piece, SourceLines, merge_trivial, split_range
from cidx.chunking._types import Chunk

# Deeply nested `else if` chains or parse errors must not exhaust the stack;
# definitions deeper than this stay inside the surrounding chunk.
_MAX_DEPTH = 100

# Signs that a ".h" file is C++; the C grammar turns classes into errors.
_CPP_HEADER = re.compile(
    r"^[ \t]*(?:class[ \t]+\w+[^;\n]*$|namespace\b[^;\n]*\{|template[ \t]*<"
    r"|(?:public|private|protected)[ \t]*:)|\bstd::",
    re.MULTILINE,
)

# C++ shows itself early in a header; scanning all of a huge one costs time.
_SNIFF_CHARS = 100_000

_parsers: dict[str, Parser] = {}


def has_spec(language: str) -> bool:
    return language in SPECS


def _parser(grammar: str) -> Parser:
    # Loading a grammar costs a few milliseconds; indexing calls this per file.
    parser = _parsers.get(grammar)
    if parser is None:
        parser = get_parser(cast(SupportedLanguage, grammar))
        _parsers[grammar] = parser
    return parser


@dataclass
class _Def:
    start: int  # first row, with the comments and decorators that belong to it
    head: int  # first row of the definition itself
    end: int
    category: Category
    name: str
    label: str = ""  # a container's chunk kind when not "class"
    children: list[_Def] = field(default_factory=list)


def _end_row(node: Node) -> int:
    # Some nodes (Rust `///` comments, Go statement lists) end at column 0 of
    # the next row, having swallowed the newline; that row is not theirs.
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point[0] else row


class _Collector:
    """Walks the tree once, collecting definitions and the comments above them."""

    def __init__(self, spec: LanguageSpec, data: bytes, src: SourceLines) -> None:
        self.spec = spec
        self.data = data
        self.src = src
        # end row -> start row of comment/attribute runs that own whole lines,
        # consulted when a definition starts on the row after one.
        self.attached: dict[int, int] = {}

    def collect(self, node: Node, depth: int = 0) -> list[_Def]:
        spec = self.spec
        found: list[_Def] = []
        kids = node.children
        skip_next = False
        for index, kid in enumerate(kids):
            if skip_next:
                skip_next = False
                continue
            kind = kid.type
            if spec.is_attached(kind):
                self._note_attached(kid, kids, index)
                continue
            if not kid.is_named:
                continue
            info = classify(kid, self.data, spec)
            if info is not None:
                end = _end_row(kid)
                if spec.trailing_body and index + 1 < len(kids):
                    following = kids[index + 1]
                    if following.type in spec.trailing_body:
                        end = _end_row(following)
                        skip_next = True
                head = kid.start_point[0]
                start = head
                while start - 1 in self.attached:
                    start = self.attached[start - 1]
                found_def = _Def(start, head, end, info.category, info.name, info.label)
                if info.category in CONTAINER_CATEGORIES and depth < _MAX_DEPTH:
                    scope = info.scope if info.scope is not None else kid
                    found_def.children = self.collect(scope, depth + 1)
                found.append(found_def)
            elif depth < _MAX_DEPTH and spec.is_transparent(kind) and kid.child_count:
                found.extend(self.collect(kid, depth + 1))
        return found

    def _note_attached(self, node: Node, kids: list[Node], index: int) -> None:
        row, column = node.start_point
        line = self.src.lines[row] if row < len(self.src) else ""
        if column > len(line) - len(line.lstrip()):
            return  # a trailing comment after code on the same line
        if row == 0 and line.startswith("#!"):
            return  # the shebang is about the file, not the first function
        if self.spec.attach_filter is not None and not self.spec.attach_filter(node, self.data):
            return
        end = _end_row(node)
        if index + 1 < len(kids) and kids[index + 1].start_point[0] <= end:
            return  # code follows on the comment's last line
        self.attached[end] = min(row, self.attached.get(end, row))


def _accept(defs: list[_Def], lo: int, hi: int) -> list[_Def]:
    """The definitions that get chunks of their own, in order, not overlapping.

    A definition starting on a row already taken (`} function g() {` or a
    minified line) keeps only its remaining rows, or none. Adjacent functions
    with one name (overloads, property getter and setter, Haskell and Elixir
    clauses) become one.
    """
    out: list[_Def] = []
    floor = lo
    for item in defs:
        if item.end < floor or item.head > hi:
            continue
        item.start = max(item.start, floor)
        item.end = min(item.end, hi)
        previous = out[-1] if out else None
        if (
            previous is not None
            and item.name
            and item.name == previous.name
            and item.category == previous.category
            and item.category not in CONTAINER_CATEGORIES
        ):
            previous.end = item.end
        else:
            out.append(item)
        floor = item.end + 1
    return out


class _Planner:
    """Lays collected definitions out over the file's rows as pieces."""

    def __init__(self, src: SourceLines) -> None:
        self.src = src
        self.pieces: list[Piece] = []

    def add(self, start: int, end: int, kind: str, symbol: str) -> None:
        if start > end:
            return
        for lo, hi in split_range(self.src, start, end):
            self.pieces.append(Piece(lo, hi, kind, symbol))

    def scope(
        self, defs: list[_Def], lo: int, hi: int, gap_kind: str, owner: str, in_class: bool
    ) -> None:
        """Rows lo..hi holding `defs` (accepted) and the code between them."""
        prefix = f"{owner}." if owner else ""
        cursor = lo
        for item in defs:
            self.add(cursor, item.start - 1, gap_kind, owner)
            self.definition(item, prefix, in_class)
            cursor = item.end + 1
        self.add(cursor, hi, gap_kind, owner)

    def definition(self, item: _Def, prefix: str, in_class: bool) -> None:
        symbol = prefix + item.name
        if item.category not in CONTAINER_CATEGORIES:
            kind = "method" if item.category == "method" or in_class else "function"
            self.add(item.start, item.end, kind, symbol)
            return
        children = _accept(item.children, item.head + 1, item.end)
        kind = item.label or "class"
        if not children:
            self.add(item.start, item.end, kind, symbol)
            return
        # The header: from the first line (with its comments and decorators)
        # to the line before the first nested definition.
        self.add(item.start, children[0].start - 1, kind, symbol)
        in_container = item.category == "container"
        self.scope(children, children[0].start, item.end, kind, symbol, in_container)


def chunk_code(language: str, src: SourceLines) -> list[Chunk]:
    """Chunk `src` with the grammar and definition table of `language`.

    Raises whatever the parser raises; the caller falls back to line windows.
    """
    spec = SPECS[language]
    if language == "c" and _CPP_HEADER.search(src.text, 0, _SNIFF_CHARS):
        spec = SPECS["cpp"]
    if not src.lines:
        return []
    data = src.text.encode("utf-8", "replace")
    tree = _parser(spec.grammar).parse(data)
    collector = _Collector(spec, data, src)
    defs = _accept(collector.collect(tree.root_node), 0, len(src) - 1)
    planner = _Planner(src)
    planner.scope(defs, 0, len(src) - 1, "module", "", in_class=False)
    return [
        src.chunk(piece.start, piece.end, piece.kind, piece.symbol)
        for piece in merge_trivial(src, planner.pieces)
    ]
