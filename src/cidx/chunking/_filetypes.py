"""Which language a file is, from its name alone.

Maps file names and extensions to a language name: the
tree-sitter-language-pack grammar name where a grammar exists, "markdown"
for prose, "text" when nothing is known.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_BY_NAME: dict[str, str] = {
    "dockerfile": "dockerfile",
    "containerfile": "dockerfile",
    "makefile": "make",
    "gnumakefile": "make",
    "cmakelists.txt": "cmake",
    "rakefile": "ruby",
    "gemfile": "ruby",
    "guardfile": "ruby",
    "podfile": "ruby",
    "vagrantfile": "ruby",
    "brewfile": "ruby",
    "config.ru": "ruby",
    "jenkinsfile": "groovy",
    "build": "starlark",
    "build.bazel": "starlark",
    "workspace": "starlark",
    "workspace.bazel": "starlark",
    "go.mod": "gomod",
    "go.sum": "gosum",
    "meson.build": "meson",
    "kconfig": "kconfig",
    "pipfile": "toml",
    "cargo.lock": "toml",
    "poetry.lock": "toml",
    ".gitignore": "gitignore",
    ".dockerignore": "gitignore",
    ".gitattributes": "gitattributes",
    ".bashrc": "bash",
    ".bash_profile": "bash",
    ".bash_aliases": "bash",
    ".profile": "bash",
    ".zshrc": "bash",
    ".zprofile": "bash",
    ".editorconfig": "ini",
    ".gitmodules": "ini",
}

_BY_EXT: dict[str, str] = {
    # Python and the JS family
    "py": "python", "pyi": "python", "pyw": "python",
    "js": "javascript", "mjs": "javascript", "cjs": "javascript", "jsx": "javascript",
    "ts": "typescript", "mts": "typescript", "cts": "typescript",
    "tsx": "tsx",
    # C family. ".h" is shared by C and C++; the chunker parses a header with
    # the C++ grammar when its text is C++, but the stored language stays "c".
    "c": "c", "h": "c",
    "cc": "cpp", "cpp": "cpp", "cxx": "cpp", "c++": "cpp", "hpp": "cpp", "hh": "cpp",
    "hxx": "cpp", "h++": "cpp", "ipp": "cpp", "tpp": "cpp", "inl": "cpp", "ino": "arduino",
    "cu": "cuda", "cuh": "cuda",
    "m": "objc", "mm": "objc",
    "cs": "csharp",
    # JVM
    "java": "java", "kt": "kotlin", "kts": "kotlin", "scala": "scala", "sc": "scala",
    "sbt": "scala", "groovy": "groovy", "gradle": "groovy",
    # other compiled and scripting languages
    "go": "go", "rs": "rust", "swift": "swift", "dart": "dart", "zig": "zig",
    "rb": "ruby", "rake": "ruby", "gemspec": "ruby", "ru": "ruby",
    "php": "php", "phtml": "php",
    "lua": "lua", "luau": "luau",
    "sh": "bash", "bash": "bash", "zsh": "bash", "ksh": "bash", "fish": "fish",
    "ps1": "powershell", "psm1": "powershell", "psd1": "powershell",
    "pl": "perl", "pm": "perl", "t": "perl",
    "r": "r", "jl": "julia",
    "hs": "haskell", "lhs": "haskell", "purs": "purescript", "elm": "elm",
    "ex": "elixir", "exs": "elixir", "erl": "erlang", "hrl": "erlang", "gleam": "gleam",
    "ml": "ocaml", "mli": "ocaml_interface", "fs": "fsharp", "fsx": "fsharp",
    "fsi": "fsharp_signature",
    "clj": "clojure", "cljs": "clojure", "cljc": "clojure", "edn": "clojure",
    "scm": "scheme", "ss": "scheme", "rkt": "racket", "lisp": "commonlisp",
    "lsp": "commonlisp", "el": "elisp", "fnl": "fennel", "janet": "janet",
    "nim": "nim", "d": "d", "odin": "odin", "hare": "hare", "v": "verilog", "sv": "verilog",
    "svh": "verilog", "vhd": "vhdl", "vhdl": "vhdl",
    "f": "fortran", "f90": "fortran", "f95": "fortran", "f03": "fortran", "f08": "fortran",
    "for": "fortran", "pas": "pascal", "pp": "puppet", "tcl": "tcl", "vim": "vim",
    "sol": "solidity", "cairo": "cairo", "move": "text", "hx": "haxe", "hack": "hack",
    "gd": "gdscript", "glsl": "glsl", "vert": "glsl", "frag": "glsl", "hlsl": "hlsl",
    "wgsl": "wgsl", "asm": "asm", "s": "asm", "ll": "llvm", "wat": "wat", "wast": "wast",
    "nix": "nix", "bzl": "starlark", "star": "starlark", "cmake": "cmake",
    "mk": "make", "mak": "make", "ninja": "ninja", "dockerfile": "dockerfile",
    "tf": "terraform", "tfvars": "terraform", "hcl": "hcl", "bicep": "bicep",
    "proto": "proto", "thrift": "thrift", "capnp": "capnp", "graphql": "graphql",
    "gql": "graphql", "prisma": "prisma", "smithy": "smithy", "rego": "rego",
    "vue": "vue", "svelte": "svelte", "astro": "astro", "twig": "twig",
    "sql": "sql", "sparql": "sparql", "rq": "sparql",
    # markup, styles and data
    "md": "markdown", "markdown": "markdown", "mdx": "markdown", "mkd": "markdown",
    "mdown": "markdown",
    "html": "html", "htm": "html", "xhtml": "html",
    "css": "css", "scss": "scss",
    "xml": "xml", "xsd": "xml", "xsl": "xml", "xslt": "xml", "svg": "xml", "plist": "xml",
    "csproj": "xml", "fsproj": "xml", "vbproj": "xml", "props": "xml", "targets": "xml",
    "dtd": "dtd",
    "json": "json", "jsonc": "json", "json5": "json", "geojson": "json", "ipynb": "json",
    "jsonnet": "jsonnet", "libsonnet": "jsonnet",
    "yaml": "yaml", "yml": "yaml", "toml": "toml", "ini": "ini", "cfg": "ini",
    "properties": "properties", "ron": "ron", "kdl": "kdl",
    "csv": "csv", "tsv": "tsv", "psv": "psv",
    "rst": "rst", "rest": "rst", "adoc": "asciidoc", "asciidoc": "asciidoc", "asc": "asciidoc",
    "tex": "latex", "bib": "bibtex", "org": "org", "typ": "typst",
    "mmd": "mermaid", "mermaid": "mermaid", "po": "po", "pem": "pem",
}  # fmt: skip

_REQUIREMENTS = re.compile(r"requirements([-_.][\w.-]*)?\.(txt|in)")


def language_for_path(rel_path: str) -> str:
    """The language of `rel_path`, judged by its file name alone."""
    name = PurePosixPath(rel_path.replace("\\", "/")).name
    lower = name.lower()
    if lower in _BY_NAME:
        return _BY_NAME[lower]
    if _REQUIREMENTS.fullmatch(lower):
        return "requirements"
    if lower.startswith(("dockerfile.", "containerfile.")):
        return "dockerfile"
    if lower.startswith("makefile."):
        return "make"
    _, dot, ext = lower.rpartition(".")
    if dot and ext in _BY_EXT:
        return _BY_EXT[ext]
    return "text"


# Names people give a language (`cidx query --lang golang`) beyond the
# stored names and file extensions, which are accepted as they are.
_ALIASES: dict[str, str] = {
    "golang": "go", "rustlang": "rust", "node": "javascript", "nodejs": "javascript",
    "ecmascript": "javascript", "c++": "cpp", "cplusplus": "cpp", "c#": "csharp",
    "cs": "csharp", "shell": "bash", "sh": "bash", "objective-c": "objc", "objectivec": "objc",
    "docker": "dockerfile", "makefile": "make", "text": "text", "txt": "text",
    "plaintext": "text", "restructuredtext": "rst", "f#": "fsharp", "yml": "yaml",
}  # fmt: skip
# Stored languages one name stands for: `--lang typescript` means .tsx too.
_FAMILIES: dict[str, tuple[str, ...]] = {
    "typescript": ("typescript", "tsx"),
    "ocaml": ("ocaml", "ocaml_interface"),
    "fsharp": ("fsharp", "fsharp_signature"),
}
_STORED = frozenset({*_BY_EXT.values(), *_BY_NAME.values(), "requirements", "text"})


def languages_named(name: str) -> tuple[str, ...] | None:
    """The stored language names `name` stands for (a language, an alias or a
    file extension, in any case), or None when it names no language."""
    key = name.strip().lower().lstrip(".")
    canonical = (
        key if key in _STORED else _ALIASES.get(key) or _BY_EXT.get(key) or _BY_NAME.get(key)
    )
    if canonical is None:
        return None
    return _FAMILIES.get(canonical, (canonical,))
