"""Search results for a person: header lines and snippets, written without a console library.

A `cidx query` answered by an owner through `cidx.cli.thin` is one socket
round trip; loading rich and pygments to print its answer would cost more
than the search. So results are written here as plain text, with ANSI
colours only when stdout is a terminal that wants them (not with
`NO_COLOR`, or `TERM=dumb`; `FORCE_COLOR` forces them). Every front end
prints results through `write_results`, so the full command line and the
short way print the same thing.

Each result is a header (`rank. path:lines  score  symbol  [kind]`), the
other places an identical chunk was found, and the best window of its
text with line numbers, lines holding a query term marked `❱`. Snippet
colours come from `_tokens`, a small tokenizer (keywords, strings,
comments, numbers) that never looks past one line: cheap, and wrong only
inside a multi-line string or comment. User text never carries escape
sequences through: control characters are escaped before colouring.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cidx.answers import QueryAnswer
from cidx.formatting import printable

SNIPPET_LINES = 12
TAB_SIZE = 4

# SGR codes, as rich's default theme and "ansi_dark" paint the same parts.
_RESET = "\x1b[0m"
_DIM, _BOLD_CYAN, _GREEN, _BOLD_MAGENTA, _BOLD_RED = "2", "1;36", "32", "1;35", "1;31"
_KEYWORD, _STRING, _COMMENT, _NUMBER = "35", "33", "90", "36"


@dataclass(frozen=True)
class PathView:
    """Shows root-relative paths relative to the folder a command ran in."""

    root: Path
    cwd: Path

    def show(self, rel: str) -> str:
        here = os.path.relpath(self.root / rel, self.cwd)
        return printable(here.replace(os.sep, "/"))


def path_view(root: str | Path) -> PathView:
    return PathView(Path(root), Path.cwd())


def colour_wanted(stream: TextIO) -> bool:
    """Whether `stream` gets ANSI colours (the conventions rich follows too)."""
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except ValueError:  # closed
        return False


class _Paint:
    """Wraps text in SGR codes, or leaves it alone when colour is off."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def __call__(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}{_RESET}" if self.on and text else text


def write_results(answer: QueryAnswer, view: PathView, out: TextIO | None = None) -> None:
    """One answer's results, as a person reads them."""
    stream = sys.stdout if out is None else out
    paint = _Paint(colour_wanted(stream))
    if not answer.results:
        stream.write(paint(_DIM, "No results.") + "\n")
        return
    marker = _marker(stream)
    terms = query_terms(answer.query)
    parts: list[str] = []
    for rank, r in enumerate(answer.results, 1):
        header = [
            paint(_DIM, f"{rank:>2}. "),
            paint(_BOLD_CYAN, f"{view.show(r.path)}:{r.start_line}-{r.end_line}"),
            paint(_GREEN, f"  {r.score:.4f}"),
        ]
        if r.symbol:
            header.append(paint(_BOLD_MAGENTA, f"  {printable(r.symbol)}"))
        header.append(paint(_DIM, f"  [{r.kind}]"))
        parts.append("".join(header) + "\n")
        if r.also:
            where = ", ".join(f"{view.show(a.path)}:{a.start_line}-{a.end_line}" for a in r.also)
            parts.append(paint(_DIM, f"    also in {where}") + "\n")
        first, lines = snippet(r.text, r.start_line, terms)
        width = len(str(first + len(lines) - 1))
        comment = _COMMENTS.get(r.language, "#")
        for number, line in enumerate(lines, first):
            code = code_printable(line).expandtabs(TAB_SIZE)
            hit = any(t in line.lower() for t in terms)
            parts.append(
                (paint(_BOLD_RED, marker) if hit else "  ")
                + paint(_DIM, f"{number:>{width}} ")
                + (_colour_code(code, comment, paint) if paint.on else code).rstrip()
                + "\n"
            )
        parts.append("\n")
    stream.write("".join(parts))


def _marker(stream: TextIO) -> str:
    """The mark of a line holding a query term, in what the stream can encode."""
    try:
        "❱".encode(getattr(stream, "encoding", None) or "utf-8")
    except (LookupError, UnicodeEncodeError):
        return "> "
    return "❱ "


# Control characters other than tab in source text would drive the terminal.
_CODE_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x09), *range(0x0A, 0x20), 0x7F)}


def code_printable(line: str) -> str:
    """One line of a snippet with control characters (but tabs) escaped; the
    carriage return of a CRLF line ending is dropped."""
    return line.removesuffix("\r").translate(_CODE_ESCAPES)


def query_terms(query: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z0-9_]{3,}", query)}


def snippet(
    text: str, start_line: int, terms: set[str], max_lines: int = SNIPPET_LINES
) -> tuple[int, list[str]]:
    """The window of `max_lines` lines with the most query terms (first line on ties)."""
    lines = text.split("\n")
    if len(lines) <= max_lines:
        return start_line, lines
    hits = [sum(1 for t in terms if t in line.lower()) for line in lines]
    best, best_score = 0, sum(hits[:max_lines])
    score = best_score
    for i in range(1, len(lines) - max_lines + 1):
        score += hits[i + max_lines - 1] - hits[i - 1]
        if score > best_score:
            best, best_score = i, score
    # Keep the definition's first line in view when the best window is near it.
    if best <= 2:
        best = 0
    return start_line + best, lines[best : best + max_lines]


# -- snippet colours ----------------------------------------------------------

# A line comment's opening, by language (cidx's language names); "#" otherwise.
_COMMENTS = {
    **dict.fromkeys(
        (
            "c",
            "cpp",
            "csharp",
            "go",
            "java",
            "javascript",
            "jsx",
            "kotlin",
            "php",
            "rust",
            "scala",
            "swift",
            "tsx",
            "typescript",
            "dart",
            "zig",
        ),
        "//",
    ),
    **dict.fromkeys(("sql", "lua", "haskell"), "--"),
    **dict.fromkeys(("markdown", "text", "json"), ""),
}

# Words that are keywords in most of the languages cidx indexes.
_KEYWORDS = frozenset(
    """
    and as async await break case catch class const continue def default defer del do elif
    else enum except export extends false fn for from func function go if impl import in
    interface is lambda let loop match mod module mut new nil none not null or package pass
    pub raise return self static struct super switch this throw trait true try type typeof
    use var void while with yield None True False
    """.split()
)

_TOKEN = re.compile(
    "(?P<string>"
    + "|".join(
        (
            '"""(?:.*?"""|.*)',  # a triple-quoted string, closed on this line or not
            "'''(?:.*?'''|.*)",
            r'"(?:\\.|[^"\\])*"?',
            r"'(?:\\.|[^'\\])*'?",
            r"`(?:\\.|[^`\\])*`?",
        )
    )
    + ")"
    r"|(?P<number>\b\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?\b|\b0[xX][0-9a-fA-F_]+\b)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
)


def _tokens(line: str, comment: str) -> Iterator[tuple[str | None, str]]:
    """`line` cut into (style, text) pieces; style None for plain text."""
    pos = 0
    while pos < len(line):
        start = line.find(comment, pos) if comment else -1
        match = _TOKEN.search(line, pos)
        if start >= 0 and (match is None or start < match.start()):
            if start > pos:
                yield None, line[pos:start]
            yield _COMMENT, line[start:]
            return
        if match is None:
            yield None, line[pos:]
            return
        if match.start() > pos:
            yield None, line[pos : match.start()]
        kind = match.lastgroup
        text = match.group()
        if kind == "string":
            yield _STRING, text
        elif kind == "number":
            yield _NUMBER, text
        else:
            yield (_KEYWORD if text in _KEYWORDS else None), text
        pos = match.end()


def _colour_code(line: str, comment: str, paint: _Paint) -> str:
    return "".join(
        text if style is None else paint(style, text) for style, text in _tokens(line, comment)
    )
