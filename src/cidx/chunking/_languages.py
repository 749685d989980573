"""Which language a file is, and which of its syntax nodes are definitions.

Two tables live here. The first maps file names and extensions to a
language name (the tree-sitter-language-pack grammar name where a grammar
exists, "markdown" for prose, "text" when nothing is known). The second,
`SPECS`, tells the code chunker, per language, which tree-sitter node types
are functions, class-like containers and namespaces, which nodes merely wrap
a definition (decorators, `export`, `template<>`), which nodes to search
through for definitions (statement blocks, class bodies, `#ifdef`), which
siblings above a definition belong to it (comments, attributes), and how to
read a definition's name where it is not simply the `name` field (Go
receivers, Rust impls, C declarators, JS `const f = () => {}`...).
A language with a grammar but no entry in `SPECS` is chunked by lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Literal

from tree_sitter import Node

# --- file name -> language -------------------------------------------------

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
    "rst": "rst", "tex": "latex", "bib": "bibtex", "org": "org", "typ": "typst",
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


# --- definitions -----------------------------------------------------------

# "function": a function, or a method when directly inside a class-like
# container. "method": always a method (Go receivers, `Foo::bar` in C++),
# its name already qualified. "container": class-like; functions inside are
# methods. "namespace": groups definitions; functions inside stay functions.
Category = Literal["function", "method", "container", "namespace"]
CONTAINER_CATEGORIES: frozenset[str] = frozenset({"container", "namespace"})


@dataclass(frozen=True)
class DefInfo:
    """What one syntax node defines."""

    category: Category
    name: str
    # The node whose descendants hold the nested definitions of a container;
    # None means the classified node itself.
    scope: Node | None = None


Hook = Callable[[Node, bytes, "LanguageSpec"], DefInfo | None]


@dataclass(frozen=True)
class LanguageSpec:
    """How to find definitions in one language's syntax tree."""

    # The grammar to parse with (several languages share one).
    grammar: str
    functions: frozenset[str] = frozenset()
    containers: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    # A wrapper is a definition when exactly one of its named children is.
    wrappers: frozenset[str] = frozenset()
    # Nodes searched through for definitions. Anything else that is not a
    # definition is opaque: its insides stay in the surrounding chunk.
    transparent: frozenset[str] = frozenset()
    # Siblings pulled into the definition below them (comments always are).
    attached: frozenset[str] = frozenset()
    # Function types that are only definitions with a body (abstract and
    # interface methods stay in their class's chunk).
    needs_body: frozenset[str] = frozenset()
    # Node types of a body that follows its signature as a sibling (Dart).
    trailing_body: frozenset[str] = frozenset()
    # Further say over which `attached` siblings really are about the
    # definition below them (Elixir's `@doc` is, its `@moduledoc` is not).
    attach_filter: Callable[[Node, bytes], bool] | None = None
    # Names for definitions that have none in the tree (`init`, `deinit`).
    default_names: Mapping[str, str] = field(default_factory=dict)
    # Node types classified by a function instead of by the sets above.
    hooks: Mapping[str, Hook] = field(default_factory=dict)

    def is_attached(self, node_type: str) -> bool:
        return "comment" in node_type or node_type in self.attached

    def is_transparent(self, node_type: str) -> bool:
        return node_type in self.transparent or node_type in _COMMON_TRANSPARENT


# Statement-level nodes worth searching through in any language that has
# them: definitions inside `if`/`try` at the top of a module, `#ifdef`
# blocks, `extern "C" {}`, and parse errors.
_COMMON_TRANSPARENT = frozenset(
    {
        "ERROR",
        "if_statement",
        "else_clause",
        "elif_clause",
        "else_if_clause",
        "try_statement",
        "except_clause",
        "catch_clause",
        "finally_clause",
        "with_statement",
        "preproc_if",
        "preproc_ifdef",
        "preproc_else",
        "preproc_elif",
        "preproc_elifdef",
        "linkage_specification",
    }
)

_NAME_TYPES = frozenset(
    {
        "identifier",
        "type_identifier",
        "simple_identifier",
        "constant",
        "name",
        "field_identifier",
        "property_identifier",
        "word",
        "atom",
        "module_name",
        "value_name",
        "type_constructor",
        "namespace_identifier",
    }
)

_TEMPLATE_ARGS = re.compile(r"<[^<>]*>")


def text_of(node: Node, src: bytes) -> str:
    return src[node.start_byte : node.end_byte].decode("utf-8", "replace")


def clean_name(raw: str) -> str:
    """A name as it appears in symbols: one line, "." as the separator."""
    name = " ".join(raw.split())
    while "<" in name and _TEMPLATE_ARGS.search(name):
        name = _TEMPLATE_ARGS.sub("", name)
    name = name.replace("::", ".")
    return name.strip("\"'`")[:120]


def generic_name(node: Node, src: bytes, spec: LanguageSpec) -> str:
    named = node.child_by_field_name("name")
    if named is None:
        named = next((c for c in node.named_children if c.type in _NAME_TYPES), None)
    if named is None:
        return spec.default_names.get(node.type, "")
    return clean_name(text_of(named, src))


def has_body(node: Node) -> bool:
    if node.child_by_field_name("body") is not None:
        return True
    return any(c.type.endswith("body") or c.type == "block" for c in node.named_children)


def classify(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """What `node` defines, or None if it is not a definition."""
    kind = node.type
    hook = spec.hooks.get(kind)
    if hook is not None:
        return hook(node, src, spec)
    category: Category
    if kind in spec.functions:
        if kind in spec.needs_body and not has_body(node):
            return None
        category = "function"
    elif kind in spec.containers:
        category = "container"
    elif kind in spec.namespaces:
        if kind in spec.needs_body and not has_body(node):
            return None
        category = "namespace"
    elif kind in spec.wrappers:
        return _unwrap(node, src, spec)
    else:
        return None
    name = generic_name(node, src, spec)
    return DefInfo(category, name) if name else None


def _unwrap(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    found: DefInfo | None = None
    for child in node.named_children:
        if spec.is_attached(child.type):
            continue
        info = classify(child, src, spec)
        if info is None:
            continue
        if found is not None:
            return None  # `const a = () => 1, b = () => 2`: search inside instead
        found = info if info.scope is not None else DefInfo(info.category, info.name, child)
    return found


# --- hooks: names that are not simply the `name` field ---------------------


def _receiver_type(receiver: Node, src: bytes) -> str:
    """`T` from a Go receiver `(r *T)` or `(r T[K])`."""
    param = next((c for c in receiver.named_children if c.type == "parameter_declaration"), None)
    target = param.child_by_field_name("type") if param is not None else None
    stack = [target] if target is not None else []
    while stack:
        current = stack.pop()
        if current.type == "type_identifier":
            return text_of(current, src)
        stack.extend(reversed(current.named_children))
    return ""


def _go_method(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    name = generic_name(node, src, spec)
    receiver = node.child_by_field_name("receiver")
    owner = _receiver_type(receiver, src) if receiver is not None else ""
    if not name:
        return None
    return DefInfo("method", f"{owner}.{name}" if owner else name)


def _rust_impl(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    target = node.child_by_field_name("type")
    if target is None:
        return None
    if target.type == "generic_type":
        inner = target.child_by_field_name("type")
        target = inner if inner is not None else target
    return DefInfo("container", clean_name(text_of(target, src)))


def _c_declarator_name(node: Node, src: bytes) -> str:
    """The declared name inside nested C/C++ declarators (`*foo(int)`)."""
    current: Node | None = node.child_by_field_name("declarator")
    while current is not None:
        inner = current.child_by_field_name("declarator")
        if inner is None and current.type.endswith("declarator"):
            # reference_declarator and friends hold the next one unnamed
            inner = next((c for c in current.named_children if "declarator" in c.type), None)
            if inner is None:
                inner = next((c for c in current.named_children if c.type in _NAME_TYPES), None)
        if inner is None:
            return text_of(current, src)
        current = inner
    return ""


def _c_function(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    raw = _c_declarator_name(node, src)
    if not raw:
        return None
    category: Category = "method" if "::" in raw else "function"
    return DefInfo(category, clean_name(raw))


def _c_record(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    if node.child_by_field_name("body") is None:
        return None  # `struct foo;` or a use of the type
    name = generic_name(node, src, spec)
    return DefInfo("container", name) if name else None


def _c_typedef(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`typedef struct { ... } name_t;` is a container named by the typedef."""
    inner = node.child_by_field_name("type")
    if inner is None or inner.child_by_field_name("body") is None:
        return None
    name = generic_name(inner, src, spec)
    if not name:
        declarator = node.child_by_field_name("declarator")
        name = clean_name(text_of(declarator, src)) if declarator is not None else ""
    return DefInfo("container", name, inner) if name else None


def _c_namespace(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    name = generic_name(node, src, spec)  # `namespace a::b` gives "a.b"
    # An anonymous namespace is searched through (it is transparent) instead.
    return DefInfo("namespace", name) if name else None


_JS_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)
_JS_CLASS_VALUES = frozenset({"class", "class_expression"})


def _js_value(name: str, value: Node | None) -> DefInfo | None:
    if not name or value is None:
        return None
    if value.type in _JS_FUNCTION_VALUES:
        return DefInfo("function", name)
    if value.type in _JS_CLASS_VALUES:
        return DefInfo("container", name, value)
    return None


def _js_declarator(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`const f = () => {}`, `let C = class {}`."""
    target = node.child_by_field_name("name")
    if target is None or target.type != "identifier":
        return None
    return _js_value(text_of(target, src), node.child_by_field_name("value"))


def _js_field(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """Class fields holding arrow functions (`onClick = () => {...}`) are methods."""
    target = node.child_by_field_name("property")
    if target is None:
        target = node.child_by_field_name("name")
    value = node.child_by_field_name("value")
    if target is None or value is None or value.type not in _JS_FUNCTION_VALUES:
        return None
    return DefInfo("function", clean_name(text_of(target, src)))


def _js_function_expression(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`app.get("/", function handler(req, res) {...})` defines `handler`."""
    target = node.child_by_field_name("name")
    return DefInfo("function", text_of(target, src)) if target is not None else None


def _js_assignment(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`Foo.prototype.bar = function () {}`, `exports.baz = () => {}`."""
    left = node.child_by_field_name("left")
    right = node.child_by_field_name("right")
    if left is None or right is None or right.type not in _JS_FUNCTION_VALUES:
        return None
    if left.type not in ("identifier", "member_expression"):
        return None
    name = clean_name(text_of(left, src)).replace(".prototype.", ".")
    for prefix in ("module.exports.", "exports.", "window."):
        name = name.removeprefix(prefix)
    return DefInfo("method" if "." in name else "function", name)


def _js_export(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    info = _unwrap(node, src, spec)
    if info is not None:
        return info
    value = node.child_by_field_name("value")
    # `export default function () {}` has no name of its own.
    return _js_value("default", value)


def _lua_function(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    target = node.child_by_field_name("name")
    if target is None:
        return None
    name = clean_name(text_of(target, src)).replace(":", ".")
    return DefInfo("method" if "." in name else "function", name)


def _lua_assignment(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`M.f = function () end`, `local f = function () end`."""
    targets = next((c for c in node.named_children if c.type == "variable_list"), None)
    values = next((c for c in node.named_children if c.type == "expression_list"), None)
    if targets is None or values is None:
        return None
    if targets.named_child_count != 1 or values.named_child_count != 1:
        return None
    value = values.named_children[0]
    if value.type != "function_definition":
        return None
    name = clean_name(text_of(targets, src)).replace(":", ".")
    return DefInfo("method" if "." in name else "function", name)


_ELIXIR_FUNCTIONS = frozenset(
    {"def", "defp", "defmacro", "defmacrop", "defguard", "defguardp", "defdelegate", "defn"}
)
_ELIXIR_CONTAINERS = frozenset({"defmodule", "defprotocol", "defimpl"})


def _elixir_call(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    target = node.child_by_field_name("target")
    if target is None or target.type != "identifier":
        return None
    keyword = text_of(target, src)
    args = next((c for c in node.named_children if c.type == "arguments"), None)
    if args is None or args.named_child_count == 0:
        return None
    head = args.named_children[0]
    if keyword in _ELIXIR_CONTAINERS:
        return DefInfo("namespace", clean_name(text_of(head, src)))
    if keyword not in _ELIXIR_FUNCTIONS:
        return None
    if head.type == "binary_operator":  # def f(x) when is_integer(x)
        left = head.child_by_field_name("left")
        head = left if left is not None else head
    if head.type == "call":
        inner = head.child_by_field_name("target")
        head = inner if inner is not None else head
    return DefInfo("function", clean_name(text_of(head, src)))


def _elixir_attribute(node: Node, src: bytes) -> bool:
    return node.type != "unary_operator" or not text_of(node, src).startswith("@moduledoc")


def _julia_signature_name(node: Node, src: bytes) -> str:
    signature = next((c for c in node.named_children if c.type == "signature"), None)
    if signature is None:
        return ""
    call = next((c for c in signature.named_children if c.type != "where_clause"), None)
    if call is not None and call.type in ("call_expression", "typed_expression"):
        call = call.named_children[0] if call.named_child_count else None
    if call is not None and call.type == "call_expression" and call.named_child_count:
        call = call.named_children[0]
    return clean_name(text_of(call, src)) if call is not None else ""


def _julia_function(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    name = _julia_signature_name(node, src)
    return DefInfo("function", name) if name else None


def _julia_type(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    head = next((c for c in node.named_children if c.type == "type_head"), None)
    if head is None:
        return None
    name = generic_name(head, src, spec) or clean_name(text_of(head, src))
    return DefInfo("container", name) if name else None


def _julia_assignment(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """The short form `f(x) = x + 1`."""
    left = node.named_children[0] if node.named_child_count else None
    if left is None or left.type != "call_expression" or not left.named_child_count:
        return None
    return DefInfo("function", clean_name(text_of(left.named_children[0], src)))


def _r_binary(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`f <- function(x) {...}`."""
    lhs = node.child_by_field_name("lhs")
    rhs = node.child_by_field_name("rhs")
    if lhs is None or rhs is None or rhs.type != "function_definition":
        return None
    return DefInfo("function", clean_name(text_of(lhs, src)))


def _dart_signature(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """Dart puts the body after the signature as a sibling (see trailing_body)."""
    nxt = node.next_named_sibling
    if nxt is None or nxt.type not in spec.trailing_body:
        return None
    name = generic_name(node, src, spec)
    if not name:
        inner = next((c for c in node.named_children if c.type.endswith("signature")), None)
        name = generic_name(inner, src, spec) if inner is not None else ""
    return DefInfo("function", name) if name else None


def _zig_decl(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`fn f() {}` and `const S = struct { ... };`."""
    for child in node.named_children:
        if child.type == "FnProto":
            target = child.child_by_field_name("function")
            return DefInfo("function", text_of(target, src)) if target is not None else None
        if child.type == "VarDecl":
            target = child.child_by_field_name("variable_type_function")
            current: Node | None = child
            for step in ("ErrorUnionExpr", "SuffixExpr", "ContainerDecl"):
                found = None
                if current is not None:
                    found = next((c for c in current.named_children if c.type == step), None)
                current = found
            if target is None or current is None:
                return None
            return DefInfo("container", text_of(target, src), current)
    return None


def _zig_test(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    label = next((c for c in node.named_children if c.type != "Block"), None)
    return DefInfo("function", "test " + clean_name(text_of(label, src)) if label else "test")


def _erlang_function(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    clause = node.child_by_field_name("clause")
    name = generic_name(clause, src, spec) if clause is not None else ""
    return DefInfo("function", name) if name else None


def _haskell_instance(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`instance Show Tree`: the class and the type, since one class has many."""
    name = generic_name(node, src, spec)
    patterns = node.child_by_field_name("patterns")
    if patterns is not None:
        name = f"{name} {clean_name(text_of(patterns, src))}".strip()
    return DefInfo("container", name) if name else None


def _ocaml_value(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    binding = next((c for c in node.named_children if c.type == "let_binding"), None)
    pattern = binding.child_by_field_name("pattern") if binding is not None else None
    if pattern is None or pattern.type != "value_name":
        return None
    return DefInfo("function", text_of(pattern, src))


def _ocaml_binding_name(node: Node, src: bytes, binding_type: str) -> str:
    binding = next((c for c in node.named_children if c.type == binding_type), None)
    if binding is None:
        return ""
    named = binding.child_by_field_name("name")
    if named is None:
        named = next((c for c in binding.named_children if c.type in _NAME_TYPES), None)
    return text_of(named, src) if named is not None else ""


def _ocaml_type(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    name = _ocaml_binding_name(node, src, "type_binding")
    return DefInfo("container", name) if name else None


def _ocaml_module(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    name = _ocaml_binding_name(node, src, "module_binding")
    return DefInfo("namespace", name) if name else None


# --- the tables ------------------------------------------------------------


def _f(*names: str) -> frozenset[str]:
    return frozenset(names)


_JAVASCRIPT = LanguageSpec(
    "javascript",
    functions=_f("function_declaration", "generator_function_declaration", "method_definition"),
    containers=_f("class_declaration"),
    wrappers=_f("lexical_declaration", "variable_declaration", "expression_statement"),
    transparent=_f(
        "class_body",
        "statement_block",
        "export_statement",
        "lexical_declaration",
        # Whole libraries live inside `(function (root, factory) {...})(...)`
        # wrappers and test suites inside `describe("x", () => {...})`: an
        # anonymous function's body is searched; a named one is a definition.
        "expression_statement",
        "call_expression",
        "arguments",
        "parenthesized_expression",
        "function_expression",
        "function",
        "arrow_function",
    ),
    # Member decorators (`@Input() name`) are siblings in the class body.
    attached=_f("decorator"),
    needs_body=_f("method_definition"),
    hooks={
        "function_expression": _js_function_expression,
        "function": _js_function_expression,
        "variable_declarator": _js_declarator,
        "field_definition": _js_field,
        "public_field_definition": _js_field,
        "assignment_expression": _js_assignment,
        "export_statement": _js_export,
    },
)
_TYPESCRIPT = replace(
    _JAVASCRIPT,
    grammar="typescript",
    containers=_f(
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "type_alias_declaration",
        "enum_declaration",
    ),
    namespaces=_f("internal_module", "module"),
    wrappers=_JAVASCRIPT.wrappers | {"ambient_declaration"},
)
_C = LanguageSpec(
    "c",
    wrappers=_f("declaration"),
    transparent=_f("declaration_list"),
    hooks={
        "function_definition": _c_function,
        "struct_specifier": _c_record,
        "union_specifier": _c_record,
        "enum_specifier": _c_record,
        "type_definition": _c_typedef,
    },
)
_CPP = replace(
    _C,
    grammar="cpp",
    wrappers=_f("declaration", "template_declaration"),
    # An anonymous namespace is searched through; a named one is a namespace.
    transparent=_f("declaration_list", "field_declaration_list", "namespace_definition"),
    hooks={**_C.hooks, "class_specifier": _c_record, "namespace_definition": _c_namespace},
)

SPECS: dict[str, LanguageSpec] = {
    "python": LanguageSpec(
        "python",
        functions=_f("function_definition"),
        containers=_f("class_definition"),
        wrappers=_f("decorated_definition"),
        transparent=_f("block", "decorated_definition"),
    ),
    "javascript": _JAVASCRIPT,
    "typescript": _TYPESCRIPT,
    "tsx": replace(_TYPESCRIPT, grammar="tsx"),
    "java": LanguageSpec(
        "java",
        functions=_f(
            "method_declaration", "constructor_declaration", "compact_constructor_declaration"
        ),
        containers=_f(
            "class_declaration",
            "interface_declaration",
            "enum_declaration",
            "record_declaration",
            "annotation_type_declaration",
        ),
        transparent=_f("class_body", "interface_body", "enum_body", "enum_body_declarations"),
        needs_body=_f("method_declaration"),
    ),
    "go": LanguageSpec(
        "go",
        functions=_f("function_declaration"),
        containers=_f("type_spec", "type_alias"),
        # `type ( A struct{}; B int )` holds several: searched through.
        wrappers=_f("type_declaration"),
        transparent=_f("type_declaration"),
        hooks={"method_declaration": _go_method},
    ),
    "rust": LanguageSpec(
        "rust",
        functions=_f("function_item", "macro_definition"),
        containers=_f("struct_item", "enum_item", "union_item", "trait_item"),
        namespaces=_f("mod_item"),
        transparent=_f("declaration_list"),
        attached=_f("attribute_item"),
        needs_body=_f("mod_item"),
        hooks={"impl_item": _rust_impl},
    ),
    "c": _C,
    "cpp": _CPP,
    "cuda": replace(_CPP, grammar="cuda"),
    "arduino": replace(_CPP, grammar="arduino"),
    "csharp": LanguageSpec(
        "csharp",
        functions=_f(
            "method_declaration",
            "constructor_declaration",
            "destructor_declaration",
            "operator_declaration",
            "conversion_operator_declaration",
        ),
        containers=_f(
            "class_declaration",
            "struct_declaration",
            "interface_declaration",
            "enum_declaration",
            "record_declaration",
            "record_struct_declaration",
        ),
        namespaces=_f("namespace_declaration"),
        transparent=_f("declaration_list"),
        needs_body=_f("method_declaration", "operator_declaration"),
    ),
    "ruby": LanguageSpec(
        "ruby",
        functions=_f("method", "singleton_method"),
        containers=_f("class", "module"),
        # `class << self` holds class methods: they belong to the class.
        transparent=_f("body_statement", "singleton_class"),
    ),
    "php": LanguageSpec(
        "php",
        functions=_f("function_definition", "method_declaration"),
        containers=_f(
            "class_declaration", "interface_declaration", "trait_declaration", "enum_declaration"
        ),
        namespaces=_f("namespace_definition"),
        # compound_statement: `if (!function_exists('f')) { function f() {} }`
        transparent=_f("declaration_list", "compound_statement"),
        attached=_f("attribute_list"),
        needs_body=_f("method_declaration", "namespace_definition"),
    ),
    "kotlin": LanguageSpec(
        "kotlin",
        functions=_f("function_declaration", "secondary_constructor"),
        containers=_f("class_declaration", "object_declaration"),
        # A companion object's functions are called as the class's own.
        transparent=_f("class_body", "companion_object", "enum_class_body"),
        needs_body=_f("function_declaration"),
        default_names={"secondary_constructor": "constructor"},
    ),
    "swift": LanguageSpec(
        "swift",
        functions=_f("function_declaration", "init_declaration", "deinit_declaration"),
        containers=_f("class_declaration", "protocol_declaration"),
        transparent=_f("class_body", "enum_class_body", "protocol_body"),
        default_names={"init_declaration": "init", "deinit_declaration": "deinit"},
    ),
    "scala": LanguageSpec(
        "scala",
        functions=_f("function_definition"),
        containers=_f(
            "class_definition", "object_definition", "trait_definition", "enum_definition"
        ),
        transparent=_f("template_body", "enum_body"),
    ),
    "lua": LanguageSpec(
        "lua",
        wrappers=_f("variable_declaration"),
        hooks={
            "function_declaration": _lua_function,
            "assignment_statement": _lua_assignment,
        },
    ),
    "bash": LanguageSpec("bash", functions=_f("function_definition")),
    "elixir": LanguageSpec(
        "elixir",
        transparent=_f("do_block"),
        attached=_f("unary_operator"),  # @doc, @spec and @impl above a def
        attach_filter=_elixir_attribute,
        hooks={"call": _elixir_call},
    ),
    "julia": LanguageSpec(
        "julia",
        namespaces=_f("module_definition"),
        transparent=_f("block"),
        attached=_f("string_literal"),  # a docstring is a string above the definition
        hooks={
            "function_definition": _julia_function,
            "macro_definition": _julia_function,
            "struct_definition": _julia_type,
            "abstract_definition": _julia_type,
            "assignment": _julia_assignment,
        },
    ),
    "r": LanguageSpec("r", hooks={"binary_operator": _r_binary}),
    "dart": LanguageSpec(
        "dart",
        containers=_f(
            "class_definition", "mixin_declaration", "extension_declaration", "enum_declaration"
        ),
        transparent=_f("class_body", "extension_body", "enum_body"),
        trailing_body=_f("function_body"),
        hooks={"function_signature": _dart_signature, "method_signature": _dart_signature},
    ),
    "zig": LanguageSpec("zig", hooks={"Decl": _zig_decl, "TestDecl": _zig_test}),
    "haskell": LanguageSpec(
        "haskell",
        # A type signature and each equation of a function are separate
        # nodes; adjacent definitions with one name merge into one chunk.
        functions=_f("function", "signature", "bind"),
        containers=_f("class", "data_type", "newtype", "type_family"),
        transparent=_f("declarations", "class_declarations", "instance_declarations"),
        attached=_f("haddock"),
        hooks={"instance": _haskell_instance},
    ),
    "erlang": LanguageSpec("erlang", hooks={"fun_decl": _erlang_function}),
    "ocaml": LanguageSpec(
        "ocaml",
        transparent=_f("module_binding", "structure"),
        hooks={
            "value_definition": _ocaml_value,
            "type_definition": _ocaml_type,
            "module_definition": _ocaml_module,
        },
    ),
}
