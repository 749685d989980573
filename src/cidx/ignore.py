"""Which paths of a project are left out of the index, decided from names alone.

`IgnoreRules` owns the whole decision for one project root: cidx's built-in
excludes (VCS folders, dependency and build output, virtualenvs, lock files,
minified bundles, binary formats), the project's nested `.gitignore` files and
`.git/info/exclude`, and nested `.cidxignore` files, which use the same syntax
and are applied last so they can override both. Each ignore file's patterns
are compiled by `cidx.ignorefile`, following git's own matcher (wildmatch),
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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cidx.ignorefile import Layer, compile_layer

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


@dataclass(frozen=True, slots=True)
class _DirRules:
    """The ignore files that apply to the entries of one directory."""

    git: tuple[Layer, ...]  # weakest first: info/exclude, then root .gitignore down
    cidx: tuple[Layer, ...]


def _verdict(layers: tuple[Layer, ...], rel: str, name: str, is_dir: bool) -> bool | None:
    for layer in reversed(layers):
        verdict = layer.verdict(rel, name, is_dir)
        if verdict is not None:
            return verdict
    return None


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
                layer = compile_layer("", text) if text else None
                if layer is not None:
                    git = (layer,)
        abs_dir = f"{self._root}/{rel_dir}" if rel_dir else self._root
        # The walk says which ignore files a folder holds, so most folders
        # (those with none) cost no failed open() each.
        if present is None or GITIGNORE in present:
            text = _read_text(f"{abs_dir}/{GITIGNORE}")
            if text and (layer := compile_layer(rel_dir, text)) is not None:
                git = (*git, layer)
        if present is None or CIDXIGNORE in present:
            text = _read_text(f"{abs_dir}/{CIDXIGNORE}")
            if text and (layer := compile_layer(rel_dir, text)) is not None:
                cidx = (*cidx, layer)
        return _DirRules(git=git, cidx=cidx)

    def listed(self, rel_dir: str, names: Iterable[str]) -> None:
        """Load `rel_dir`'s rules, knowing from its listing which ignore files it holds."""
        if rel_dir not in self._dir_rules:
            if rel_dir:
                self._rules_for(rel_dir.rpartition("/")[0])
            present = frozenset(n for n in names if n in IGNORE_FILE_NAMES)
            self._dir_rules[rel_dir] = self._load(rel_dir, present)
