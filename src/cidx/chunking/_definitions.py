"""What a definition is to the code chunker, and how one is recognised.

`LanguageSpec` describes, per language, which tree-sitter node types are
functions, class-like containers and namespaces, which nodes merely wrap a
definition (decorators, `export`, `template<>`), which nodes to search
through for definitions (statement blocks, class bodies, `#ifdef`), and
which siblings above a definition belong to it (comments, attributes).
`classify` applies a spec to one node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tree_sitter import Node

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
    # The chunk kind of a container when it is not a class: "interface",
    # "type", "enum", "object" (an object literal of functions).
    label: str = ""


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

NAME_TYPES = frozenset(
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
        named = next((c for c in node.named_children if c.type in NAME_TYPES), None)
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
        return unwrap(node, src, spec)
    else:
        return None
    name = generic_name(node, src, spec)
    return DefInfo(category, name, label=CONTAINER_LABELS.get(kind, "")) if name else None


# Container node types that are not classes, by the kind their chunks get.
CONTAINER_LABELS = {
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "enum_declaration": "enum",
}


def unwrap(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    found: DefInfo | None = None
    for child in node.named_children:
        if spec.is_attached(child.type):
            continue
        info = classify(child, src, spec)
        if info is None:
            continue
        if found is not None:
            return None  # `const a = () => 1, b = () => 2`: search inside instead
        found = (
            info if info.scope is not None else DefInfo(info.category, info.name, child, info.label)
        )
    return found
