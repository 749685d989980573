"""Which paths of a project are left out of the index, decided from names alone.

`IgnoreRules` owns the whole decision for one project root: cidx's built-in
excludes (VCS folders, dependency and build output, virtualenvs, lock files,
minified bundles, binary formats), the project's nested `.gitignore` files and
`.git/info/exclude`, and nested `.cidxignore` files, which use the same syntax
and are applied last so they can override both. Patterns are compiled here,
following git's own matcher (wildmatch) rather than a library's internals,
and checked against git itself in the tests. Deciding never reads an
indexed file; the only I/O is reading ignore files (once per directory,
cached) and one `stat` per surviving directory to spot a virtualenv by its
`pyvenv.cfg`.

Precedence, from weakest to strongest:

1. built-in excludes (`DEFAULT_EXCLUDED_DIRS` and friends below);
2. git's rules: `.git/info/exclude`, then `.gitignore` files from the root
   down, deeper files overriding shallower ones, the last matching line of a
   file winning. A `!` line here re-includes only what git's own rules
   excluded, never a built-in exclude: a whitelist-style `.gitignore` (`*`,
   `!*/`, `!*.py`) would otherwise pull every `node_modules/` back in;
3. `.cidxignore` files from the root down, same rules among themselves; the
   last match overrides everything above, so `!build/` re-includes a built-in
   exclude and `!generated/` re-includes what `.gitignore` excluded.

`HARD_EXCLUDED_NAMES` (VCS internals and cidx's own `.code-indexer/`) are
excluded whatever any file says: indexing the index would feed on itself.

As in git, a directory that is excluded is not descended into, so nothing
below it can be re-included by a rule that names a file inside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "BINARY_EXTENSIONS",
    "DEFAULT_EXCLUDED_DIRS",
    "DEFAULT_EXCLUDED_DIR_SUFFIXES",
    "DEFAULT_EXCLUDED_FILES",
    "DEFAULT_EXCLUDED_FILE_SUFFIXES",
    "HARD_EXCLUDED_NAMES",
    "IGNORE_FILE_NAMES",
    "VENV_MARKER",
    "IgnoreRules",
]

GITIGNORE: Final = ".gitignore"
CIDXIGNORE: Final = ".cidxignore"
# The per-directory ignore files; a watcher that sees one change calls
# `IgnoreRules.invalidate` (or `notify_changed`) for its directory.
IGNORE_FILE_NAMES: Final[tuple[str, ...]] = (GITIGNORE, CIDXIGNORE)

# A directory holding this file is a Python virtualenv, whatever it is called.
VENV_MARKER: Final = "pyvenv.cfg"

# Excluded at any depth, as a directory or a file, and no rule can re-include
# them: VCS internals are not project text, and `.code-indexer/` is the index.
HARD_EXCLUDED_NAMES: Final = frozenset({".git", ".hg", ".svn", ".bzr", ".jj", ".code-indexer"})

# Directory names excluded at any depth unless a `.cidxignore` re-includes
# them. `.vscode/` is deliberately absent: its settings, launch and task
# files are small, hand-written and often committed, and they answer real
# questions ("how is the debugger started?"). `.idea/` is mostly generated
# workspace state. `out/` is absent too: it is build output for some tools
# but an ordinary source folder name in others, and a wrongly excluded folder
# silently loses search results while a wrongly included one is only noise
# (and usually in `.gitignore` anyway).
DEFAULT_EXCLUDED_DIRS: Final = frozenset(
    {
        # dependencies and virtualenvs
        "node_modules",
        "bower_components",
        ".venv",
        "venv",
        "site-packages",
        # caches of tools
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".gradle",
        ".terraform",
        # build output
        "build",
        "dist",
        "target",
        ".next",
        ".nuxt",
        # coverage reports
        "coverage",
        "htmlcov",
        # IDE state
        ".idea",
    }
)
DEFAULT_EXCLUDED_DIR_SUFFIXES: Final[tuple[str, ...]] = (".egg-info",)

# Exact file names: generated lock files whose names do not end in `.lock`.
DEFAULT_EXCLUDED_FILES: Final = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "pnpm-lock.yaml",
        "go.sum",
        "bun.lockb",
        ".DS_Store",
    }
)

# Formats that are binary by definition: dropped by extension, unopened.
# SVG is not here: it is text, and the indexer decides what to do with it.
# fmt: off
BINARY_EXTENSIONS: Final = frozenset({
    # images
    "png", "jpg", "jpeg", "gif", "bmp", "ico", "icns", "tif", "tiff", "webp", "psd", "xcf",
    "heic", "heif", "avif", "raw", "cr2", "nef",
    # audio
    "mp3", "wav", "flac", "ogg", "oga", "m4a", "aac", "opus", "wma", "aiff", "aif", "mid", "midi",
    # video
    "mp4", "m4v", "mov", "avi", "mkv", "webm", "wmv", "flv", "mpg", "mpeg", "3gp",
    # archives, disk images and packages
    "zip", "tar", "gz", "tgz", "bz2", "tbz2", "xz", "txz", "zst", "lz", "lz4", "lzma", "7z",
    "rar", "br", "cab", "iso", "img", "dmg", "deb", "rpm", "msi", "apk", "aab", "ipa", "jar",
    "war", "ear", "whl", "egg", "nupkg", "gem", "crate",
    # fonts
    "ttf", "otf", "woff", "woff2", "eot",
    # compiled objects, libraries and executables
    "so", "o", "a", "obj", "lib", "dll", "dylib", "exe", "bin", "pyc", "pyo", "pyd", "class",
    "dex", "beam", "wasm", "pdb", "elf", "ko",
    # office documents
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp",
    # databases
    "db", "sqlite", "sqlite3", "mdb", "accdb",
    # model weights and data arrays
    "onnx", "pt", "pth", "ckpt", "safetensors", "gguf", "ggml", "tflite", "mlmodel", "h5", "hdf5",
    "npy", "npz", "pkl", "pickle", "joblib", "parquet", "feather", "arrow", "orc", "avro",
    # editor swap files
    "swp", "swo",
})
# fmt: on

# Lower-cased name endings: lock files (yarn, poetry, Cargo, Gemfile,
# composer, uv, Pipfile, ...), minified bundles, source maps, and every
# binary extension above. `_default_excludes` tests the last extension with
# one set lookup and only the two-part endings with `endswith`.
DEFAULT_EXCLUDED_FILE_SUFFIXES: Final[tuple[str, ...]] = (
    ".lock",
    ".min.js",
    ".min.css",
    ".map",
    *sorted("." + ext for ext in BINARY_EXTENSIONS),
)
_EXCLUDED_EXTENSIONS: Final = frozenset(
    s[1:] for s in DEFAULT_EXCLUDED_FILE_SUFFIXES if s.count(".") == 1
)
_EXCLUDED_MULTI_SUFFIXES: Final = tuple(
    s for s in DEFAULT_EXCLUDED_FILE_SUFFIXES if s.count(".") > 1
)

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
class _Layer:
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


@dataclass(frozen=True, slots=True)
class _DirRules:
    """The ignore files that apply to the entries of one directory."""

    git: tuple[_Layer, ...]  # weakest first: info/exclude, then root .gitignore down
    cidx: tuple[_Layer, ...]


def _verdict(layers: tuple[_Layer, ...], rel: str, name: str, is_dir: bool) -> bool | None:
    for layer in reversed(layers):
        verdict = layer.verdict(rel, name, is_dir)
        if verdict is not None:
            return verdict
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


def _compile_layer(base: str, text: str) -> _Layer | None:
    if text.startswith("\ufeff"):
        text = text[1:]  # git skips a UTF-8 byte order mark too
    rules = tuple(rule for line in text.splitlines() if (rule := _compile_line(line)))
    if not rules:
        return None

    def alternation(kind: list[_Rule]) -> re.Pattern[str] | None:
        if not kind:
            return None
        return re.compile("|".join(f"(?:{r.regex.pattern})" for r in kind), re.DOTALL)

    return _Layer(
        base=base,
        rules=rules,
        name_filter=alternation([r for r in rules if r.name_only]),
        path_filter=alternation([r for r in rules if not r.name_only]),
    )


def _read_text(path: str) -> str | None:
    try:
        # surrogateescape keeps non-UTF-8 bytes comparable with the names
        # os.scandir returns for the same bytes.
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError:
        # Missing (the common case), unreadable, or a directory: no rules.
        return None


def _git_common_dir(root: str) -> str | None:
    """The directory holding `info/exclude` for a repository rooted at `root`."""
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    # A worktree or submodule has a `.git` file pointing at its git dir; a
    # worktree's git dir names the shared one in `commondir`.
    text = _read_text(dot_git)
    if text is None or not text.startswith("gitdir:"):
        return None
    git_dir = os.path.join(root, text[len("gitdir:") :].strip())
    common = _read_text(os.path.join(git_dir, "commondir"))
    if common is not None:
        git_dir = os.path.join(git_dir, common.strip())
    return git_dir


def _normalize(rel: str) -> str:
    rel = rel.replace("\\", "/") if os.sep == "\\" else rel
    while rel.startswith("./"):
        rel = rel[2:]
    return rel.strip("/")


def _is_within(rel: str, rel_dir: str) -> bool:
    return not rel_dir or rel == rel_dir or rel.startswith(rel_dir + "/")


class IgnoreRules:
    """The ignore decision for every path under one project root.

    Rules are loaded lazily per directory and cached, so deciding a path
    costs a few set lookups and, per ignore file that applies, usually one
    regex search. Call `invalidate` when an ignore file changes. Not
    thread-safe: use one instance from one thread, or guard it with a lock.
    """

    def __init__(self, root: Path, *, defaults: bool = True) -> None:
        """`defaults=False` drops the built-in excludes (not the hard ones),
        leaving exactly git's rules plus `.cidxignore`."""
        self.root = root
        self.defaults = defaults
        self._root = os.fspath(root)
        self._dir_rules: dict[str, _DirRules] = {}
        self._dir_ignored: dict[str, bool] = {}

    # ----------------------------------------------------------------- queries

    def is_ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether the project-relative POSIX path `rel` is left out.

        A path below an ignored directory is ignored, as in git: the walk
        never descends there, and this agrees with it.
        """
        rel = _normalize(rel)
        if not rel:
            return False
        parent = ""
        for name in rel.split("/")[:-1]:
            here = f"{parent}/{name}" if parent else name
            ignored = self._dir_ignored.get(here)
            if ignored is None:
                ignored = self.ignores_entry(parent, name, is_dir=True)
                self._dir_ignored[here] = ignored
            if ignored:
                return True
            parent = here
        name = rel.rsplit("/", 1)[-1]
        if is_dir:
            ignored = self._dir_ignored.get(rel)
            if ignored is None:
                ignored = self._dir_ignored[rel] = self.ignores_entry(parent, name, True)
            return ignored
        return self.ignores_entry(parent, name, False)

    def ignores_entry(self, parent: str, name: str, is_dir: bool) -> bool:
        """Whether entry `name` of directory `parent` is left out.

        The walker's fast path: it assumes `parent` itself is not ignored,
        which holds for every directory the walk descends into.
        """
        if name in HARD_EXCLUDED_NAMES:
            return True
        rel = f"{parent}/{name}" if parent else name
        rules = self._rules_for(parent)
        if rules.cidx:
            verdict = _verdict(rules.cidx, rel, name, is_dir)
            if verdict is not None:
                return verdict
        if rules.git and _verdict(rules.git, rel, name, is_dir):
            return True
        return self.defaults and self._default_excludes(rel, name, is_dir)

    def _default_excludes(self, rel: str, name: str, is_dir: bool) -> bool:
        if is_dir:
            if name in DEFAULT_EXCLUDED_DIRS or name.endswith(DEFAULT_EXCLUDED_DIR_SUFFIXES):
                return True
            # Last, because it is the only check that costs a system call.
            return os.path.isfile(os.path.join(self._root, rel, VENV_MARKER))
        if name in DEFAULT_EXCLUDED_FILES:
            return True
        lower = name.lower()
        if lower.rpartition(".")[2] in _EXCLUDED_EXTENSIONS and "." in lower:
            return True
        return lower.endswith(_EXCLUDED_MULTI_SUFFIXES)

    # ------------------------------------------------------------ invalidation

    def invalidate(self, rel_dir: str = "") -> None:
        """Forget cached rules and decisions for `rel_dir` and everything below.

        Call it with the directory of a `.gitignore` or `.cidxignore` that was
        created, edited or deleted (or of a `pyvenv.cfg`); `""` (the root)
        forgets everything, including `.git/info/exclude`.
        """
        rel_dir = _normalize(rel_dir)
        if not rel_dir:
            self._dir_rules.clear()
            self._dir_ignored.clear()
            return
        for cache in (self._dir_rules, self._dir_ignored):
            for key in [k for k in cache if _is_within(k, rel_dir)]:
                del cache[key]

    def notify_changed(self, rel: str) -> bool:
        """Invalidate what a change to the file `rel` affects; a watcher calls
        this for every event. Returns whether `rel` affects the rules at all."""
        rel = _normalize(rel)
        parent, _, name = rel.rpartition("/")
        if name in IGNORE_FILE_NAMES or name == VENV_MARKER:
            self.invalidate(parent)
            return True
        if rel in (".git", ".git/info", ".git/info/exclude"):
            self.invalidate("")
            return True
        return False

    # ----------------------------------------------------------------- loading

    def _rules_for(self, rel_dir: str) -> _DirRules:
        cached = self._dir_rules.get(rel_dir)
        if cached is not None:
            return cached
        # Load the nearest uncached ancestors top-down, iteratively: a path
        # may be nested deeper than Python's recursion limit.
        missing = [rel_dir]
        while missing[-1] and missing[-1].rpartition("/")[0] not in self._dir_rules:
            missing.append(missing[-1].rpartition("/")[0])
        for rel in reversed(missing):
            self._dir_rules[rel] = self._load(rel)
        return self._dir_rules[rel_dir]

    def _load(self, rel_dir: str, present: frozenset[str] | None = None) -> _DirRules:
        """`present`: the ignore files the folder holds, when its listing is known."""
        if rel_dir:
            parent = self._dir_rules[rel_dir.rpartition("/")[0]]
            git, cidx = parent.git, parent.cidx
        else:
            git = cidx = ()
            git_dir = _git_common_dir(self._root)
            if git_dir is not None:
                text = _read_text(os.path.join(git_dir, "info", "exclude"))
                layer = _compile_layer("", text) if text else None
                if layer is not None:
                    git = (layer,)
        abs_dir = f"{self._root}/{rel_dir}" if rel_dir else self._root
        # The walk says which ignore files a folder holds, so most folders
        # (those with none) cost no failed open() each.
        if present is None or GITIGNORE in present:
            text = _read_text(f"{abs_dir}/{GITIGNORE}")
            if text and (layer := _compile_layer(rel_dir, text)) is not None:
                git = (*git, layer)
        if present is None or CIDXIGNORE in present:
            text = _read_text(f"{abs_dir}/{CIDXIGNORE}")
            if text and (layer := _compile_layer(rel_dir, text)) is not None:
                cidx = (*cidx, layer)
        return _DirRules(git=git, cidx=cidx)

    def listed(self, rel_dir: str, names: Iterable[str]) -> None:
        """Load `rel_dir`'s rules, knowing from its listing which ignore files it holds."""
        if rel_dir not in self._dir_rules:
            if rel_dir:
                self._rules_for(rel_dir.rpartition("/")[0])
            present = frozenset(n for n in names if n in IGNORE_FILE_NAMES)
            self._dir_rules[rel_dir] = self._load(rel_dir, present)
