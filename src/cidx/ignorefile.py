"""One ignore file's text compiled into rules, following git's own matcher.

`compile_layer` turns the text of a `.gitignore`, `.cidxignore` or
`.git/info/exclude` into a `Layer`: its lines as regexes translated from
git's wildmatch syntax (rather than a library's internals), relative to the
directory holding the file, and asked for a verdict on one entry. Which
files apply where, and in what precedence, is `cidx.ignore`'s concern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["Layer", "compile_layer"]

# What git's wildmatch calls `[:name:]` inside a bracket expression (ASCII).
_POSIX_CLASSES: Final = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": "".join("\\" + c for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


def _class_char(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else c


def _bracket(p: str, i: int) -> tuple[str, int] | None:
    """The regex for the bracket expression starting at `p[i] == "["`, and
    the index after it; None when git would make the whole pattern fail (no
    closing bracket, an unknown `[:class:]`, a trailing backslash)."""
    n = len(p)
    j = i + 1
    negate = j < n and p[j] in "!^"
    if negate:
        j += 1
    items: list[str] = []
    first = True
    while True:
        if j >= n:
            return None
        c = p[j]
        if c == "]" and not first:
            break
        first = False
        if c == "[" and p.startswith("[:", j):
            close = p.find(":]", j + 2)
            if close != -1:
                name = p[j + 2 : close]
                if name not in _POSIX_CLASSES:
                    return None
                items.append(_POSIX_CLASSES[name])
                j = close + 2
                continue
        if c == "\\":
            j += 1
            if j >= n:
                return None
            c = p[j]
        if j + 2 < n and p[j + 1] == "-" and p[j + 2] != "]":
            hi_at = j + 2
            if p[hi_at] == "\\":
                hi_at += 1
                if hi_at >= n:
                    return None
            items.append(f"{_class_char(c)}-{_class_char(p[hi_at])}")
            j = hi_at + 1
            continue
        items.append(_class_char(c))
        j += 1
    # A bracket expression never matches the "/" between path components.
    body = "".join(items)
    return (f"[^/{body}]" if negate else f"(?!/)[{body}]"), j + 1


def _translate(p: str) -> str | None:
    """The regex (to be matched in full) for one gitignore pattern, without
    its `!`, its leading `/` and its trailing `/`; None if it can match nothing.

    Git's wildmatch rules: `*` and `?` stay within one path component, `[...]`
    is a bracket expression, a backslash makes the next character literal,
    and `**` is special only as a whole component: `**/` is any number of
    directories (none too), a trailing `/**` everything inside. Other runs of
    asterisks are a plain `*`.
    """
    n = len(p)
    out: list[str] = []
    i = 0
    while i < n:
        c = p[i]
        if c == "*":
            j = i
            while j < n and p[j] == "*":
                j += 1
            whole_component = j - i >= 2 and (i == 0 or p[i - 1] == "/")
            if whole_component and j == n:
                out.append(".*")
            elif whole_component and p[j] == "/":
                out.append("(?:.*/)?")
                j += 1
            else:
                out.append("[^/]*")
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            bracket = _bracket(p, i)
            if bracket is None:
                return None
            regex, i = bracket
            out.append(regex)
        elif c == "\\":
            if i + 1 >= n:
                return None
            out.append(re.escape(p[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _trim_trailing_spaces(line: str) -> str:
    """Drop trailing spaces, except one escaped with a backslash (as git does)."""
    end = len(line)
    while end and line[end - 1] == " ":
        slashes = 0
        while end - 2 - slashes >= 0 and line[end - 2 - slashes] == "\\":
            slashes += 1
        if slashes % 2:
            break
        end -= 1
    return line[:end]


@dataclass(frozen=True, slots=True)
class _Rule:
    """One compiled line of an ignore file.

    `regex` matches, in full, the entry's name when `name_only` (a pattern
    with no slash but a trailing one matches at any depth), else its path
    relative to the ignore file's directory. It matches the path itself,
    never a path below it: what is inside an excluded directory is never
    looked at, and what is inside one that is not is judged on its own (so
    `!build/` in `.cidxignore` re-includes the folder, not every `.o` in it).
    """

    regex: re.Pattern[str]
    ignore: bool  # False for a `!` line
    dir_only: bool  # a trailing `/`
    name_only: bool

    def matches(self, path: str, name: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return self.regex.fullmatch(name if self.name_only else path) is not None


@dataclass(frozen=True, slots=True)
class Layer:
    """The rules of one ignore file, relative to the directory holding it."""

    base: str  # "" for the root
    rules: tuple[_Rule, ...]
    # The rules as two alternations, so the common case (no line matches)
    # costs a couple of C-level regex matches instead of one per line: one
    # of the name-only lines (`*.log`, `build/`), tried against the entry's
    # name, one of the rest, tried against its path. Each is None when the
    # file has no line of that kind.
    name_filter: re.Pattern[str] | None
    path_filter: re.Pattern[str] | None

    def verdict(self, rel: str, name: str, is_dir: bool) -> bool | None:
        """True (ignore), False (re-include) or None when no line matches."""
        path = rel[len(self.base) + 1 :] if self.base else rel
        if not (
            (self.name_filter is not None and self.name_filter.fullmatch(name))
            or (self.path_filter is not None and self.path_filter.fullmatch(path))
        ):
            return None
        for rule in reversed(self.rules):
            if rule.matches(path, name, is_dir):
                return rule.ignore
        return None


def _compile_line(line: str) -> _Rule | None:
    """One line of an ignore file as a rule; None for a blank line, a comment,
    or a pattern git would never match (which git skips silently, and so do
    we, so one bad line does not drop the rest of the file)."""
    body = _trim_trailing_spaces(line)
    if not body or body.startswith("#"):
        return None
    ignore = not body.startswith("!")
    if not ignore:
        body = body[1:]
    dir_only = body.endswith("/")
    if dir_only:
        body = body[:-1]
    # A slash anywhere but at the end anchors the pattern to the file's folder.
    name_only = "/" not in body
    body = body.removeprefix("/")
    if not body:
        return None
    regex = _translate(body)
    if regex is None:
        return None
    try:
        compiled = re.compile(regex, re.DOTALL)
    except re.error:  # e.g. a range whose ends are reversed: it matches nothing
        return None
    return _Rule(regex=compiled, ignore=ignore, dir_only=dir_only, name_only=name_only)


def compile_layer(base: str, text: str) -> Layer | None:
    if text.startswith("\ufeff"):
        text = text[1:]  # git skips a UTF-8 byte order mark too
    rules = tuple(rule for line in text.splitlines() if (rule := _compile_line(line)))
    if not rules:
        return None

    def alternation(kind: list[_Rule]) -> re.Pattern[str] | None:
        if not kind:
            return None
        return re.compile("|".join(f"(?:{r.regex.pattern})" for r in kind), re.DOTALL)

    return Layer(
        base=base,
        rules=rules,
        name_filter=alternation([r for r in rules if r.name_only]),
        path_filter=alternation([r for r in rules if not r.name_only]),
    )
