"""Tests for cidx.chunking: detection, Python, sizes, markdown, line windows, odd input.

Every input chunked through `chunk` is also checked against the invariants
all chunkers promise (text equals the lines, no blank chunks, full coverage
of non-blank lines, no overlap outside the windows of one range, bounded
size); `test_invariants_hold_for_every_input` re-runs them over the whole
collection at the end.
"""

from __future__ import annotations

import itertools
import json
import random

import pytest

import cidx.chunking._dispatch as dispatch
from cidx.chunking import CHUNKER_VERSION, Chunk, chunk_file, detect_language
from cidx.chunking._text import (
    MAX_CHUNK_CHARS,
    MAX_CHUNK_LINES,
    TEXT_WINDOW_LINES,
    WINDOW_LINES,
)
from tests.chunk_kit import SEEN, by_symbol, check_invariants, chunk, file_lines, kinds, src
from tests.chunk_samples import (
    C_SOURCE,
    CPP,
    GO,
    JAVA,
    JAVASCRIPT,
    MARKDOWN,
    PYTHON,
    RUST,
    TYPESCRIPT,
)

# --- language detection ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b/models.py", "python"),
        ("stubs/x.pyi", "python"),
        ("web/app.mjs", "javascript"),
        ("web/app.cjs", "javascript"),
        ("web/App.jsx", "javascript"),
        ("web/app.ts", "typescript"),
        ("web/App.tsx", "tsx"),
        ("src/lib.rs", "rust"),
        ("main.go", "go"),
        ("include/x.h", "c"),
        ("src/x.hpp", "cpp"),
        ("src/x.cc", "cpp"),
        ("src/x.cxx", "cpp"),
        ("Program.cs", "csharp"),
        ("App.java", "java"),
        ("lib/x.rb", "ruby"),
        ("index.php", "php"),
        ("Main.kt", "kotlin"),
        ("View.swift", "swift"),
        ("Main.scala", "scala"),
        ("init.lua", "lua"),
        ("run.sh", "bash"),
        ("Main.hs", "haskell"),
        ("lib/x.ex", "elixir"),
        ("src/x.erl", "erlang"),
        ("src/x.ml", "ocaml"),
        ("analysis.R", "r"),
        ("x.jl", "julia"),
        ("main.dart", "dart"),
        ("build.zig", "zig"),
        ("q.sql", "sql"),
        ("index.html", "html"),
        ("style.css", "css"),
        ("style.scss", "scss"),
        ("package.json", "json"),
        ("ci.yml", "yaml"),
        ("pyproject.toml", "toml"),
        ("pom.xml", "xml"),
        ("README.md", "markdown"),
        ("notes.markdown", "markdown"),
        ("page.mdx", "markdown"),
        ("Dockerfile", "dockerfile"),
        ("docker/Dockerfile.dev", "dockerfile"),
        ("Makefile", "make"),
        ("CMakeLists.txt", "cmake"),
        ("Gemfile", "ruby"),
        ("requirements-dev.txt", "requirements"),
        ("notes.txt", "text"),
        ("LICENSE", "text"),
        ("weird.unknownext", "text"),
        ("win\\style\\PATH.PY", "python"),
    ],
)
def test_language_for_path(path: str, language: str) -> None:
    assert detect_language(path) == language
    assert chunk_file(path, "").language == language


# --- python ----------------------------------------------------------------


def test_python_definitions() -> None:
    chunks = chunk("pkg/session.py", PYTHON)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("module", ""),
        ("class", "Session"),
        ("method", "Session.request"),
        ("class", "Session.Config"),
        ("method", "Session.Config.load"),
        ("class", "Session"),
        ("method", "Session.close"),
        ("function", "fetch"),
        ("module", ""),
    ]
    module = chunks[0]
    assert module.text.startswith('"""Module docstring."""')
    assert module.text.endswith("TIMEOUT = 5")
    header = chunks[1]
    # The header: comment, decorator, signature, docstring, attributes.
    assert header.text.splitlines()[0] == "# Comment about the class."
    assert "@dataclass" in header.text
    assert "retries: int = 3" in header.text
    assert "def request" not in header.text
    request = by_symbol(chunks, "Session.request")
    assert request.text.splitlines()[:2] == ["    # Comment about request.", "    @retry(3)"]
    # A function nested in a function stays in its parent's chunk.
    assert "def helper()" in request.text
    assert "helper" not in {c.symbol for c in chunks}
    assert chunks[5].text.strip() == "timeout = property(lambda self: 5)"
    assert chunks[-1].text.startswith('if __name__ == "__main__":')


def test_python_comment_above_first_method_goes_with_the_method() -> None:
    # tree-sitter puts this comment outside the class body node.
    code = src("""
        class A:
            # Explains m.
            def m(self):
                pass
    """)
    chunks = chunk("a.py", code)
    assert [(c.kind, c.symbol, c.start_line) for c in chunks] == [
        ("class", "A", 1),
        ("method", "A.m", 2),
    ]


def test_python_comment_after_a_blank_line_is_not_attached() -> None:
    code = src("""
        import os
        # about the imports

        def f():
            return 1
    """)
    chunks = chunk("a.py", code)
    assert [(c.kind, c.start_line, c.end_line) for c in chunks] == [
        ("module", 1, 2),
        ("function", 4, 5),
    ]


def test_python_trailing_comment_on_code_line_is_not_attached() -> None:
    code = "x = 1  # note\ndef f():\n    return x\n"
    chunks = chunk("a.py", code)
    assert [(c.kind, c.start_line) for c in chunks] == [("module", 1), ("function", 2)]


def test_python_property_and_setter_merge_into_one_chunk() -> None:
    code = src("""
        class A:
            @property
            def x(self):
                return self._x

            @x.setter
            def x(self, value):
                self._x = value
    """)
    chunks = chunk("a.py", code)
    assert [(c.kind, c.symbol) for c in chunks] == [("class", "A"), ("method", "A.x")]
    assert "@x.setter" in chunks[1].text


def test_python_definitions_inside_top_level_if_and_try() -> None:
    code = src("""
        try:
            from fast import parse
        except ImportError:
            def parse(text):
                return text
    """)
    assert kinds("a.py", code) == [("module", ""), ("function", "parse")]


def test_python_one_line_class_is_one_chunk() -> None:
    assert kinds("a.py", "class A: x = 1\n") == [("class", "A")]


# --- sizes -------------------------------------------------------------------


def test_oversized_function_is_windowed_with_its_symbol() -> None:
    body = "\n".join(f"    total += {i}" for i in range(150))
    code = f"def big():\n    total = 0\n{body}\n    return total\n"
    chunks = chunk("big.py", code)
    assert len(chunks) > 1
    assert {(c.kind, c.symbol) for c in chunks} == {("function", "big")}
    assert all(c.end_line - c.start_line + 1 <= WINDOW_LINES for c in chunks)
    for a, b in itertools.pairwise(chunks):
        assert 0 < a.end_line - b.start_line + 1 <= 8  # overlapping, a little
    assert chunks[0].start_line == 1
    assert chunks[-1].end_line == len(file_lines(code))


def test_oversized_class_keeps_methods_whole() -> None:
    methods = "\n".join(
        f"    def m{i}(self):\n        a = {i}\n        b = {i}\n        return a + b\n"
        for i in range(40)
    )
    code = f"class Big:\n    x = 1\n\n{methods}"
    chunks = chunk("big.py", code)
    assert len(chunks) == 41
    assert chunks[0].symbol == "Big"
    assert all(c.kind == "method" and c.end_line - c.start_line == 3 for c in chunks[1:])


def test_wide_lines_are_windowed_by_characters() -> None:
    line = "    x = '" + "a" * 500 + "'"
    code = "def wide():\n" + "\n".join([line] * 30) + "\n"
    chunks = chunk("wide.py", code)
    assert len(chunks) > 1
    assert all(len(c.text) <= MAX_CHUNK_CHARS for c in chunks)


def test_minified_and_one_line_data_files_give_no_chunks() -> None:
    bundle = ";".join(f"function f{i}(a){{return a+{i}}}" for i in range(3000))
    assert len(bundle) > 90_000
    data = json.dumps([{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(2000)])
    # Wrapped at 4,000 characters, as some minifiers do: still minified.
    wrapped = "\n".join(bundle[i : i + 4000] for i in range(0, len(bundle), 4000))
    for path, text in [("dist/app.js", bundle), ("fixtures/items.json", data), ("w.js", wrapped)]:
        result = chunk_file(path, text)
        assert result.minified and result.chunks == [], path
    check_invariants("dist/app.js", bundle, chunk_file("dist/app.js", bundle))


def test_long_lines_among_ordinary_ones_are_not_minified() -> None:
    # One embedded blob in an ordinary module: indexed, the blob's line cut.
    body = "\n".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(400))
    code = f'BLOB = "{"A" * 5000}"\n\n{body}'
    result = chunk_file("module.py", code)
    assert not result.minified and len(result.chunks) > 100
    assert max(len(c.text) for c in result.chunks) == MAX_CHUNK_CHARS
    # Prose with long unwrapped paragraphs (well under a chunk's size each).
    prose = "# Notes\n\n" + "\n\n".join(("word " * 400).strip() for _ in range(20))
    assert not chunk_file("notes.md", prose).minified
    # Small files are never minified, whatever their shape.
    assert not chunk_file("one.js", "x" * 3000).minified
    assert chunk("one.js", "x" * 3000)


def test_closing_braces_fold_into_the_chunk_before_them_within_limits() -> None:
    code = "namespace n {\nvoid small() {\n}\n}\n"
    chunks = chunk("a.cpp", code)
    assert [(c.kind, c.symbol, c.end_line) for c in chunks] == [
        ("class", "n", 1),
        ("function", "n.small", 4),  # took the namespace's "}"
    ]
    body = "\n".join(f"  step{i}();" for i in range(MAX_CHUNK_LINES - 2))
    code = f"namespace n {{\nvoid full() {{\n{body}\n}}\n}}\n"
    chunks = chunk("b.cpp", code)
    # The function is exactly at the limit, so the "}" cannot join it.
    assert [(c.symbol, c.end_line - c.start_line + 1) for c in chunks] == [
        ("n", 1),
        ("n.full", MAX_CHUNK_LINES),
        ("n", 1),
    ]


def test_long_gap_between_definitions_is_windowed() -> None:
    constants = "\n".join(f"C{i} = {i}" for i in range(200))
    code = f"{constants}\n\ndef f():\n    return 1\n"
    chunks = chunk("consts.py", code)
    gaps = [c for c in chunks if c.kind == "module"]
    assert len(gaps) > 1
    assert chunks[-1].symbol == "f"


# --- markdown ----------------------------------------------------------------


def test_markdown_sections_by_heading_path() -> None:
    chunks = chunk("docs/guide.md", MARKDOWN)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("section", "Guide"),
        ("section", "Install"),
        ("section", "Install > From source"),
        ("section", "Install > From PyPI"),
        ("section", "Usage"),
        ("section", "Usage > Options"),
    ]
    assert chunks[0].start_line == 1  # front matter joins the first section
    assert "# not a heading" in by_symbol(chunks, "Install > From source").text
    assert "## still code" in by_symbol(chunks, "Usage").text
    for c in chunks:
        assert c.meta == {"tags": ["cli", "search"], "aliases": ["Handbook"]}


def test_markdown_bare_heading_joins_its_first_subsection() -> None:
    code = "# Project\n\n## Intro\nHello.\n\n## Usage\nRun.\n"
    chunks = chunk("README.md", code)
    assert [(c.symbol, c.start_line) for c in chunks] == [
        ("Project > Intro", 1),
        ("Project > Usage", 6),
    ]


@pytest.mark.parametrize(
    ("front", "meta"),
    [
        ("tags: one", {"tags": ["one"]}),
        ("tags: a, b", {"tags": ["a", "b"]}),
        ("tags:\n  - '#x'\n  - 2\n  - null", {"tags": ["x", "2"]}),
        ("aliases: [My Note, Other]", {"aliases": ["My Note", "Other"]}),
        ("tags: {nested: 1}", {"tags": []}),
        ("title: T", {}),
        ("key: [unclosed", {}),
        ("- just\n- a list", {}),
        ("tags: !!python/object:os.system x", {}),
        ("date: 2020-13-45\ntags: [a]", {}),  # the loader raises ValueError
        ("tags: &t [x, *t]", {"tags": ["x"]}),
    ],
)
def test_markdown_front_matter(front: str, meta: dict[str, list[str]]) -> None:
    chunks = chunk("note.md", f"---\n{front}\n---\n# Note\nBody.\n")
    assert [(c.kind, c.symbol, c.meta) for c in chunks] == [("section", "Note", meta)]


def test_markdown_chain_of_bare_headings_folds_into_the_first_text() -> None:
    code = "# A\n## B\n### C\nText.\n### D\nMore.\n"
    chunks = chunk("a.md", code)
    assert [(c.symbol, c.start_line, c.end_line) for c in chunks] == [
        ("A > B > C", 1, 4),
        ("A > B > D", 5, 6),
    ]


def test_markdown_without_headings_and_with_unclosed_front_matter() -> None:
    assert kinds("a.md", "just text\nmore\n") == [("section", "")]
    assert kinds("a.md", "---\nnot closed\n\ntext\n") == [("section", "")]


def test_markdown_big_section_is_windowed() -> None:
    body = "\n".join(f"Line {i} of the section." for i in range(200))
    chunks = chunk("big.md", f"# Big\n{body}\n# Next\nx\n")
    big = [c for c in chunks if c.symbol == "Big"]
    assert len(big) > 2
    assert chunks[-1].symbol == "Next"


# --- other text ---------------------------------------------------------------


def test_small_text_file_is_one_chunk() -> None:
    code = '{\n  "name": "cidx",\n  "version": "1.0"\n}\n'
    assert [(c.kind, c.symbol, c.start_line, c.end_line) for c in chunk("package.json", code)] == [
        ("text", "", 1, 4)
    ]


def test_long_text_file_is_windowed() -> None:
    code = "\n".join(f"key{i}: {i}" for i in range(100)) + "\n"
    chunks = chunk("config.yaml", code)
    assert all(c.kind == "text" for c in chunks)
    assert all(c.end_line - c.start_line + 1 <= TEXT_WINDOW_LINES for c in chunks)
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 100
    assert len(chunks) == 3


# --- odd input ------------------------------------------------------------------

_GARBAGE = "".join(
    random.Random(7).choice("abc{}()[];:'\"\\/#*\t \n\x01\x7f\u00e9\u4e2d") for _ in range(5000)
)


@pytest.mark.parametrize("path", ["x.py", "x.js", "x.ts", "x.go", "x.md", "x.json", "x.c", "x"])
@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t\n\n",
        "\n",
        "x",
        "def f():\r\n    return 1\r\n\r\nclass A:\r\n    pass",
        "def f(:\n  return ))\nclass\n",
        "}" * 10 + "\n" + "{" * 10,
        "a" * 20_000,
        "line\rwith lone carriage returns\r",
        _GARBAGE,
        "\ufeff# BOM first\nprint(1)\n",
    ],
    ids=[
        "empty",
        "whitespace",
        "newline",
        "one-char",
        "crlf",
        "invalid",
        "braces",
        "long-line",
        "lone-cr",
        "garbage",
        "bom",
    ],
)
def test_odd_input_never_raises(path: str, text: str) -> None:
    chunk(path, text)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("a.py", PYTHON),
        ("a.go", GO),
        ("a.rs", RUST),
        ("a.c", C_SOURCE),
        ("a.cpp", CPP),
        ("a.js", JAVASCRIPT),
        ("a.ts", TYPESCRIPT),
        ("A.java", JAVA),
        ("g.md", MARKDOWN),
    ],
)
def test_mutated_sources_keep_the_invariants(path: str, text: str) -> None:
    # Half-typed and corrupted files are what an editor saves while a
    # watcher reindexes: cut, spliced and sprinkled with brackets.
    rng = random.Random(path)
    for _ in range(40):
        chars = list(text)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(chars) + 1)
            action = rng.randrange(4)
            if action == 0:
                del chars[at : at + rng.randint(1, 30)]
            elif action == 1:
                chars.insert(at, rng.choice("{}()[]\"'`/#*\n\t;:=<>@\\"))
            elif action == 2:
                chars = chars[:at]
            else:
                start = rng.randrange(len(text))
                chars[at:at] = text[start : start + rng.randint(1, 200)]
        chunk(path, "".join(chars))


def test_crlf_text_is_normalised_and_lines_match() -> None:
    code = "import os\r\n\r\ndef f():\r\n    return 1\r\n"
    chunks = chunk("a.py", code)
    assert [(c.start_line, c.end_line, c.text) for c in chunks] == [
        (1, 1, "import os"),
        (3, 4, "def f():\n    return 1"),
    ]


def test_blank_only_file_has_no_chunks() -> None:
    assert chunk("a.py", "\n\n   \n") == []


def test_fallback_to_line_windows_when_a_chunker_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(language: str, text: object) -> list[Chunk]:
        raise LookupError("Could not find language library for python")

    monkeypatch.setattr(dispatch, "chunk_code", broken)
    chunks = chunk("a.py", PYTHON, fallback_ok=True)
    assert {c.kind for c in chunks} == {"text"}
    assert "a.py" in caplog.text


def test_deterministic() -> None:
    for path, text in [("a.py", PYTHON), ("a.go", GO), ("g.md", MARKDOWN), ("x.js", _GARBAGE)]:
        assert chunk_file(path, text) == chunk_file(path, text)


def test_chunker_version_is_an_int() -> None:
    assert isinstance(CHUNKER_VERSION, int) and CHUNKER_VERSION >= 1


def test_invariants_hold_for_every_input() -> None:
    # Runs last in this module (pytest keeps file order): every input seen by
    # the tests above, checked once more, so a new test is covered by adding
    # it, and the whole collection also runs when one test is selected alone.
    inputs = SEEN or [("a.py", PYTHON), ("a.go", GO), ("g.md", MARKDOWN)]
    for path, text in [*inputs, ("a.rs", RUST), ("a.java", JAVA), ("a.ts", TYPESCRIPT)]:
        check_invariants(path, text, chunk_file(path, text))


RST = src("""
    =======
    Project
    =======

    What it is.

    Install
    =======

    Run pip.

    From source
    -----------

    Clone it::

        Not a title
        ===========

    Usage
    =====

    Call it.
""")

ASCIIDOC = src("""
    = Guide
    :toc:

    Intro.

    == Install

    Run it.

    === From source

    ----
    == not a title
    ----

    == Usage

    Call.
""")


def test_restructuredtext_is_chunked_by_section() -> None:
    chunks = chunk("docs/index.rst", RST)
    assert detect_language("docs/index.rst") == "rst"
    assert [(c.kind, c.symbol, c.start_line) for c in chunks] == [
        ("section", "Project", 1),
        ("section", "Project > Install", 7),
        ("section", "Project > Install > From source", 12),
        ("section", "Project > Usage", 20),
    ]
    assert "Not a title" in by_symbol(chunks, "Project > Install > From source").text


def test_asciidoc_is_chunked_by_section() -> None:
    chunks = chunk("docs/guide.adoc", ASCIIDOC)
    assert detect_language("docs/guide.adoc") == "asciidoc"
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("section", "Guide"),
        ("section", "Guide > Install"),
        ("section", "Guide > Install > From source"),
        ("section", "Guide > Usage"),
    ]
    assert "== not a title" in by_symbol(chunks, "Guide > Install > From source").text
