"""Reading definition names that are not simply the `name` field.

Go receivers (`func (r *T) Name` is "T.Name"), Rust impls, C declarators,
JavaScript `const f = () => {}` and `Foo.prototype.bar = function`, and the
like, per language; `SPECS` in `_languages` points each language at its hooks.
"""

from __future__ import annotations

from tree_sitter import Node

from cidx.chunking._definitions import (
    NAME_TYPES,
    Category,
    DefInfo,
    LanguageSpec,
    clean_name,
    generic_name,
    text_of,
    unwrap,
)


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


def go_method(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    name = generic_name(node, src, spec)
    receiver = node.child_by_field_name("receiver")
    owner = _receiver_type(receiver, src) if receiver is not None else ""
    if not name:
        return None
    return DefInfo("method", f"{owner}.{name}" if owner else name)


def rust_impl(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
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
                inner = next((c for c in current.named_children if c.type in NAME_TYPES), None)
        if inner is None:
            return text_of(current, src)
        current = inner
    return ""


def c_function(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    raw = _c_declarator_name(node, src)
    if not raw:
        return None
    category: Category = "method" if "::" in raw else "function"
    return DefInfo(category, clean_name(raw))


def c_record(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    if node.child_by_field_name("body") is None:
        return None  # `struct foo;` or a use of the type
    name = generic_name(node, src, spec)
    return DefInfo("container", name) if name else None


def c_typedef(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`typedef struct { ... } name_t;` is a container named by the typedef."""
    inner = node.child_by_field_name("type")
    if inner is None or inner.child_by_field_name("body") is None:
        return None
    name = generic_name(inner, src, spec)
    if not name:
        declarator = node.child_by_field_name("declarator")
        name = clean_name(text_of(declarator, src)) if declarator is not None else ""
    return DefInfo("container", name, inner) if name else None


def c_namespace(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
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
    if value.type == "object" and any(_js_member_function(c) for c in value.named_children):
        # `const api = { get() {...}, put: (x) => ... }`: its functions are methods.
        return DefInfo("container", name, value, "object")
    return None


def _js_member_function(node: Node) -> bool:
    if node.type == "method_definition":
        return True
    if node.type != "pair":
        return False
    value = node.child_by_field_name("value")
    return value is not None and value.type in _JS_FUNCTION_VALUES


def js_pair(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`name: function () {...}` or `name: () => ...` in an object literal of functions."""
    key = node.child_by_field_name("key")
    if key is None or not _js_member_function(node):
        return None
    return DefInfo("function", clean_name(text_of(key, src)))


def js_declarator(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`const f = () => {}`, `let C = class {}`."""
    target = node.child_by_field_name("name")
    if target is None or target.type != "identifier":
        return None
    return _js_value(text_of(target, src), node.child_by_field_name("value"))


def js_field(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """Class fields holding arrow functions (`onClick = () => {...}`) are methods."""
    target = node.child_by_field_name("property")
    if target is None:
        target = node.child_by_field_name("name")
    value = node.child_by_field_name("value")
    if target is None or value is None or value.type not in _JS_FUNCTION_VALUES:
        return None
    return DefInfo("function", clean_name(text_of(target, src)))


def js_function_expression(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`app.get("/", function handler(req, res) {...})` defines `handler`."""
    target = node.child_by_field_name("name")
    return DefInfo("function", text_of(target, src)) if target is not None else None


def js_assignment(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`Foo.prototype.bar = function () {}`, `exports.baz = () => {}`."""
    left = node.child_by_field_name("left")
    right = node.child_by_field_name("right")
    if left is None or right is None:
        return None
    if left.type not in ("identifier", "member_expression"):
        return None
    name = clean_name(text_of(left, src)).replace(".prototype.", ".")
    for prefix in ("module.exports.", "exports.", "window."):
        name = name.removeprefix(prefix)
    if right.type == "object":
        # `module.exports = {...}`, `Foo.prototype = {...}`: an object of functions.
        name = name.removesuffix(".prototype")
        return _js_value("exports" if name == "module.exports" else name, right)
    if right.type not in _JS_FUNCTION_VALUES:
        return None
    return DefInfo("method" if "." in name else "function", name)


def js_export(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    info = unwrap(node, src, spec)
    if info is not None:
        return info
    value = node.child_by_field_name("value")
    # `export default function () {}` has no name of its own.
    return _js_value("default", value)


def lua_function(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    target = node.child_by_field_name("name")
    if target is None:
        return None
    name = clean_name(text_of(target, src)).replace(":", ".")
    return DefInfo("method" if "." in name else "function", name)


def lua_assignment(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
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


def elixir_call(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
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


def elixir_attribute(node: Node, src: bytes) -> bool:
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


def julia_function(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    name = _julia_signature_name(node, src)
    return DefInfo("function", name) if name else None


def julia_type(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    head = next((c for c in node.named_children if c.type == "type_head"), None)
    if head is None:
        return None
    name = generic_name(head, src, spec) or clean_name(text_of(head, src))
    return DefInfo("container", name) if name else None


def julia_assignment(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """The short form `f(x) = x + 1`."""
    left = node.named_children[0] if node.named_child_count else None
    if left is None or left.type != "call_expression" or not left.named_child_count:
        return None
    return DefInfo("function", clean_name(text_of(left.named_children[0], src)))


def r_binary(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`f <- function(x) {...}`."""
    lhs = node.child_by_field_name("lhs")
    rhs = node.child_by_field_name("rhs")
    if lhs is None or rhs is None or rhs.type != "function_definition":
        return None
    return DefInfo("function", clean_name(text_of(lhs, src)))


def dart_signature(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """Dart puts the body after the signature as a sibling (see trailing_body)."""
    nxt = node.next_named_sibling
    if nxt is None or nxt.type not in spec.trailing_body:
        return None
    name = generic_name(node, src, spec)
    if not name:
        inner = next((c for c in node.named_children if c.type.endswith("signature")), None)
        name = generic_name(inner, src, spec) if inner is not None else ""
    return DefInfo("function", name) if name else None


def zig_decl(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
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


def zig_test(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    label = next((c for c in node.named_children if c.type != "Block"), None)
    return DefInfo("function", "test " + clean_name(text_of(label, src)) if label else "test")


def erlang_function(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    clause = node.child_by_field_name("clause")
    name = generic_name(clause, src, spec) if clause is not None else ""
    return DefInfo("function", name) if name else None


def haskell_instance(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    """`instance Show Tree`: the class and the type, since one class has many."""
    name = generic_name(node, src, spec)
    patterns = node.child_by_field_name("patterns")
    if patterns is not None:
        name = f"{name} {clean_name(text_of(patterns, src))}".strip()
    return DefInfo("container", name) if name else None


def ocaml_value(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
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
        named = next((c for c in binding.named_children if c.type in NAME_TYPES), None)
    return text_of(named, src) if named is not None else ""


def ocaml_type(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    name = _ocaml_binding_name(node, src, "type_binding")
    return DefInfo("container", name) if name else None


def ocaml_module(node: Node, src: bytes, spec: LanguageSpec) -> DefInfo | None:
    name = _ocaml_binding_name(node, src, "module_binding")
    return DefInfo("namespace", name) if name else None


# --- the tables ------------------------------------------------------------
