"""`SPECS`: for each language with a grammar, what its definitions look like.

A language with a grammar but no entry here is chunked by lines. The types
these tables are made of live in `_definitions`, the name readers they
point at in `_hooks`, and which file is which language in `_filetypes`.
"""

from __future__ import annotations

from dataclasses import replace

from cidx.chunking._definitions import LanguageSpec
from cidx.chunking._hooks import (
    c_function,
    c_namespace,
    c_record,
    c_typedef,
    dart_signature,
    elixir_attribute,
    elixir_call,
    erlang_function,
    go_method,
    haskell_instance,
    js_assignment,
    js_declarator,
    js_export,
    js_field,
    js_function_expression,
    js_pair,
    julia_assignment,
    julia_function,
    julia_type,
    lua_assignment,
    lua_function,
    ocaml_module,
    ocaml_type,
    ocaml_value,
    r_binary,
    rust_impl,
    zig_decl,
    zig_test,
)


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
        "function_expression": js_function_expression,
        "function": js_function_expression,
        "variable_declarator": js_declarator,
        "field_definition": js_field,
        "public_field_definition": js_field,
        "assignment_expression": js_assignment,
        "export_statement": js_export,
        "pair": js_pair,
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
        "function_definition": c_function,
        "struct_specifier": c_record,
        "union_specifier": c_record,
        "enum_specifier": c_record,
        "type_definition": c_typedef,
    },
)
_CPP = replace(
    _C,
    grammar="cpp",
    wrappers=_f("declaration", "template_declaration"),
    # An anonymous namespace is searched through; a named one is a namespace.
    transparent=_f("declaration_list", "field_declaration_list", "namespace_definition"),
    hooks={**_C.hooks, "class_specifier": c_record, "namespace_definition": c_namespace},
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
        hooks={"method_declaration": go_method},
    ),
    "rust": LanguageSpec(
        "rust",
        functions=_f("function_item", "macro_definition"),
        containers=_f("struct_item", "enum_item", "union_item", "trait_item"),
        namespaces=_f("mod_item"),
        transparent=_f("declaration_list"),
        attached=_f("attribute_item"),
        needs_body=_f("mod_item"),
        hooks={"impl_item": rust_impl},
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
            "function_declaration": lua_function,
            "assignment_statement": lua_assignment,
        },
    ),
    "bash": LanguageSpec("bash", functions=_f("function_definition")),
    "elixir": LanguageSpec(
        "elixir",
        transparent=_f("do_block"),
        attached=_f("unary_operator"),  # @doc, @spec and @impl above a def
        attach_filter=elixir_attribute,
        hooks={"call": elixir_call},
    ),
    "julia": LanguageSpec(
        "julia",
        namespaces=_f("module_definition"),
        transparent=_f("block"),
        attached=_f("string_literal"),  # a docstring is a string above the definition
        hooks={
            "function_definition": julia_function,
            "macro_definition": julia_function,
            "struct_definition": julia_type,
            "abstract_definition": julia_type,
            "assignment": julia_assignment,
        },
    ),
    "r": LanguageSpec("r", hooks={"binary_operator": r_binary}),
    "dart": LanguageSpec(
        "dart",
        containers=_f(
            "class_definition", "mixin_declaration", "extension_declaration", "enum_declaration"
        ),
        transparent=_f("class_body", "extension_body", "enum_body"),
        trailing_body=_f("function_body"),
        hooks={"function_signature": dart_signature, "method_signature": dart_signature},
    ),
    "zig": LanguageSpec("zig", hooks={"Decl": zig_decl, "TestDecl": zig_test}),
    "haskell": LanguageSpec(
        "haskell",
        # A type signature and each equation of a function are separate
        # nodes; adjacent definitions with one name merge into one chunk.
        functions=_f("function", "signature", "bind"),
        containers=_f("class", "data_type", "newtype", "type_family"),
        transparent=_f("declarations", "class_declarations", "instance_declarations"),
        attached=_f("haddock"),
        hooks={"instance": haskell_instance},
    ),
    "erlang": LanguageSpec("erlang", hooks={"fun_decl": erlang_function}),
    "ocaml": LanguageSpec(
        "ocaml",
        transparent=_f("module_binding", "structure"),
        hooks={
            "value_definition": ocaml_value,
            "type_definition": ocaml_type,
            "module_definition": ocaml_module,
        },
    ),
}
