"""Chunking: definitions per language beyond Python (Go, Rust, C/C++, JavaScript,
TypeScript, Java, C#, Ruby, PHP, Kotlin, Swift, Scala, Lua, Bash, R, Elixir,
Haskell and more). Helpers and invariants are in `chunk_kit`.
"""

from __future__ import annotations

import pytest

from cidx.chunking import chunk_file
from tests.chunk_kit import by_symbol, check_invariants, chunk, kinds, src
from tests.chunk_samples import C_SOURCE, CPP, GO, JAVA, JAVASCRIPT, RUST, TYPESCRIPT


def test_go_receivers_and_doc_comments() -> None:
    chunks = chunk("server.go", GO)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("module", ""),
        ("class", "Server"),
        ("module", ""),
        ("class", "Handler"),
        ("class", "ID"),  # with the group's closing ")"
        ("method", "Server.Start"),
        ("method", "Cache.Get"),
        ("function", "New"),
    ]
    server = by_symbol(chunks, "Server")
    assert server.text.startswith("// Server serves requests.\n// It is safe")
    start = by_symbol(chunks, "Server.Start")
    assert start.text.startswith("// Start starts the server.\nfunc (s *Server) Start()")


def test_rust_impls_traits_and_modules() -> None:
    chunks = chunk("src/lib.rs", RUST)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("module", ""),
        ("class", "Point"),
        ("class", "Point"),
        ("method", "Point.fmt"),
        ("class", "Shape"),
        ("method", "Shape.name"),
        ("class", "geometry"),
        ("function", "geometry.origin"),
        ("module", ""),
        ("function", "main"),
    ]
    point = chunks[1]
    assert point.text.startswith("/// A point.\n#[derive(Debug, Clone)]\npub struct Point")
    assert by_symbol(chunks, "Point.fmt").text.startswith("    /// Formats it.\n")
    # A signature without a body stays in its trait's header.
    assert "fn area(&self) -> f64;" in chunks[4].text
    # The closing brace of an impl is not a chunk of its own.
    assert all(c.text.strip() != "}" for c in chunks)


def test_c_declarators_and_records() -> None:
    chunks = chunk("buf.c", C_SOURCE)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("module", ""),
        ("function", "make_buffer"),
        ("class", "point_t"),
        ("class", "list"),
        ("module", ""),
        ("function", "debug_dump"),
    ]
    assert chunks[1].text.startswith("/* Allocates a buffer. */")
    assert chunks[4].text == "int prototype(int);\n\n#ifdef DEBUG"
    assert chunks[5].text.endswith("#endif")


def test_cpp_classes_namespaces_and_out_of_line_methods() -> None:
    chunks = chunk("socket.cpp", CPP)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("class", "net"),
        ("class", "net.Socket"),
        ("method", "net.Socket.fd"),
        ("class", "net.Socket"),
        ("method", "net.Socket.read"),
        ("method", "net.Socket.name"),
    ]
    assert chunks[3].text == " private:\n  int fd_;\n};"
    # "}  // namespace net" joins the last chunk instead of standing alone.
    assert chunks[-1].text.endswith("}  // namespace net")
    assert "Socket();" in chunks[1].text
    read = by_symbol(chunks, "net.Socket.read")
    assert read.text.startswith("template <typename T>")


def test_cpp_header_with_h_extension_uses_the_cpp_grammar() -> None:
    code = src("""
        #pragma once
        class Widget {
         public:
          void draw() { paint(); }
        };
    """)
    result = chunk_file("widget.h", code)
    assert result.language == "c"
    check_invariants("widget.h", code, result)
    assert ("method", "Widget.draw") in [(c.kind, c.symbol) for c in result.chunks]


def test_javascript_functions_arrows_classes_and_assignments() -> None:
    chunks = chunk("src/users.js", JAVASCRIPT)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("module", ""),
        ("function", "getUser"),
        ("function", "formatName"),
        ("module", ""),
        ("class", "UserList"),
        ("method", "UserList.onClick"),
        ("method", "UserList.render"),
        ("method", "Widget.draw"),
        ("function", "helper"),
    ]
    assert by_symbol(chunks, "getUser").text.startswith("/**\n * Fetches a user.")
    assert "state = { users: [] };" in by_symbol(chunks, "UserList").text


def test_javascript_umd_wrapper_is_searched_for_definitions() -> None:
    code = src("""
        (function (root, factory) {
          root.lib = factory();
        })(this, function () {
          function parse(text) {
            return text;
          }
          return { parse: parse };
        });
    """)
    assert ("function", "parse") in kinds("vendor/lib.js", code)


def test_typescript_interfaces_types_enums_namespaces() -> None:
    chunks = chunk("user.ts", TYPESCRIPT)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("interface", "User"),
        ("type", "Id"),
        ("enum", "Color"),
        ("class", "Util"),
        ("function", "Util.clamp"),
        ("class", "UserService"),
        ("method", "UserService.constructor"),
        ("class", "UserService"),
        ("method", "UserService.load"),
    ]
    assert by_symbol(chunks, "User").text.count("\n") == 3  # one chunk, signatures inside
    assert chunks[5].text.startswith("@Injectable()")
    # A member decorator and the comment above it belong to the method.
    assert by_symbol(chunks, "UserService.load").text.lstrip().startswith("// Loads one user.")
    assert chunks[7].text.strip() == "abstract find(id: Id): User;"


def test_tsx_component() -> None:
    code = src("""
        export function Button({ label }: Props) {
          return <button className="btn">{label}</button>;
        }

        export const Icon = () => <svg />;
    """)
    assert kinds("Button.tsx", code) == [("function", "Button"), ("function", "Icon")]


def test_java_classes_methods_and_annotations() -> None:
    chunks = chunk("UserRepo.java", JAVA)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("module", ""),
        ("class", "UserRepo"),
        ("method", "UserRepo.find"),
        ("class", "UserRepo"),
        ("method", "UserRepo.UserRepo"),
        ("class", "UserRepo.Cache"),
        ("method", "UserRepo.Cache.clear"),
    ]
    assert chunks[1].text.startswith("/** A repository. */\n@Repository")
    find = by_symbol(chunks, "UserRepo.find")
    assert find.text.startswith("    /** Finds one. */\n    @Override")
    assert chunks[3].text.strip() == "abstract void flush();"


def test_csharp_namespaces_and_members() -> None:
    code = src("""
        using System;

        namespace App.Services
        {
            /// <summary>Sends mail.</summary>
            [Serializable]
            public class Mailer : IMailer
            {
                public Mailer() { }

                public int Count => 0;

                public void Send(string to) => Console.WriteLine(to);
            }

            public interface IMailer { void Send(string to); }
        }
    """)
    chunks = chunk("Mailer.cs", code)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("module", ""),
        ("class", "App.Services"),
        ("class", "App.Services.Mailer"),
        ("method", "App.Services.Mailer.Mailer"),
        ("class", "App.Services.Mailer"),
        ("method", "App.Services.Mailer.Send"),
        ("interface", "App.Services.IMailer"),
    ]
    assert chunks[2].text.lstrip().startswith("/// <summary>Sends mail.</summary>")


def test_ruby_modules_classes_and_methods() -> None:
    code = src("""
        require "json"

        module Billing
          # An invoice.
          class Invoice < Base
            attr_reader :total

            def initialize(total)
              @total = total
            end

            def self.load(path)
              new(JSON.parse(File.read(path)))
            end

            class << self
              def empty
                new(0)
              end
            end
          end
        end
    """)
    assert kinds("invoice.rb", code) == [
        ("module", ""),
        ("class", "Billing"),
        ("class", "Billing.Invoice"),
        ("method", "Billing.Invoice.initialize"),
        ("method", "Billing.Invoice.load"),
        ("class", "Billing.Invoice"),
        ("method", "Billing.Invoice.empty"),
    ]


def test_php_functions_classes_and_methods() -> None:
    code = src("""
        <?php
        namespace App;

        /** Formats money. */
        function money(int $cents): string {
            return sprintf("%.2f", $cents / 100);
        }

        #[Entity]
        class Order extends Model {
            const TABLE = 'orders';

            public function total(): int {
                return 0;
            }

            abstract protected function validate();
        }
    """)
    chunks = chunk("Order.php", code)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("module", ""),
        ("function", "money"),
        ("class", "Order"),
        ("method", "Order.total"),
        ("class", "Order"),
    ]
    assert chunks[2].text.startswith("#[Entity]")


def test_kotlin_swift_scala() -> None:
    kotlin = src("""
        @Entity
        class User(val id: Int) {
            fun greet(): String = "hi"

            companion object {
                fun create(): User = User(1)
            }
        }

        object Registry {
            fun register(u: User) {}
        }

        fun main() {}
    """)
    assert kinds("User.kt", kotlin) == [
        ("class", "User"),
        ("method", "User.greet"),
        ("class", "User"),
        ("method", "User.create"),
        ("class", "Registry"),
        ("method", "Registry.register"),
        ("function", "main"),
    ]
    swift = src("""
        /// A view.
        struct ContentView: View {
            var title: String

            init(title: String) {
                self.title = title
            }

            func render() -> String {
                return title
            }
        }

        extension ContentView {
            func extra() {}
        }
    """)
    assert kinds("ContentView.swift", swift) == [
        ("class", "ContentView"),
        ("method", "ContentView.init"),
        ("method", "ContentView.render"),
        ("class", "ContentView"),
        ("method", "ContentView.extra"),
    ]
    scala = src("""
        /** Greeter. */
        class Greeter(name: String) {
          def greet(): String = s"hi $name"
          def abstractOne(): Int
        }

        object Main {
          def main(args: Array[String]): Unit = {
            println("x")
          }
        }
    """)
    assert kinds("Main.scala", scala) == [
        ("class", "Greeter"),
        ("method", "Greeter.greet"),
        ("class", "Greeter"),
        ("class", "Main"),
        ("method", "Main.main"),
    ]


def test_lua_bash_r() -> None:
    lua = src("""
        local M = {}

        -- Adds numbers.
        function M.add(a, b)
          return a + b
        end

        function M:sub(b)
          return self.v - b
        end

        local function helper()
        end

        return M
    """)
    assert kinds("m.lua", lua) == [
        ("module", ""),
        ("method", "M.add"),
        ("method", "M.sub"),
        ("function", "helper"),
        ("module", ""),
    ]
    bash = src("""
        #!/usr/bin/env bash
        set -euo pipefail

        # Prints usage.
        usage() {
          echo "usage"
        }

        function main {
          usage
        }

        main "$@"
    """)
    assert kinds("run.sh", bash) == [
        ("module", ""),
        ("function", "usage"),
        ("function", "main"),
        ("module", ""),
    ]
    r = "# Mean.\nmy_mean <- function(x) {\n  sum(x) / length(x)\n}\nprint(my_mean(1))\n"
    assert kinds("stats.R", r) == [("function", "my_mean"), ("module", "")]


def test_elixir_clauses_merge_and_moduledoc_stays_in_header() -> None:
    code = src("""
        defmodule Math do
          @moduledoc "Math."

          @doc "Factorial."
          def fact(0), do: 1
          def fact(n), do: n * fact(n - 1)

          defp helper, do: :ok
        end
    """)
    chunks = chunk("math.ex", code)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("class", "Math"),
        ("function", "Math.fact"),
        ("function", "Math.helper"),
    ]
    assert "@moduledoc" in chunks[0].text
    assert chunks[1].text.lstrip().startswith('@doc "Factorial."')
    assert chunks[1].text.count("def fact") == 2


def test_haskell_signature_and_equations_are_one_chunk() -> None:
    code = src("""
        module Main where

        -- | Factorial.
        fact :: Int -> Int
        fact 0 = 1
        fact n = n * fact (n - 1)

        main = print (fact 5)
    """)
    chunks = chunk("Main.hs", code)
    fact = by_symbol(chunks, "fact")
    assert fact.kind == "function"
    assert "fact :: Int -> Int" in fact.text
    assert fact.text.count("fact n = ") == 1


@pytest.mark.parametrize(
    ("path", "code", "expected"),
    [
        ("a.jl", 'module M\n"Doc."\nfunction f(x)\n  x\nend\nend\n', ("function", "M.f")),
        ("a.dart", "class A {\n  int m() {\n    return 1;\n  }\n}\n", ("method", "A.m")),
        ("a.zig", "const S = struct {\n    pub fn m() void {}\n};\n", ("method", "S.m")),
        ("a.erl", "-module(a).\nf(0) -> 1;\nf(N) -> N.\n", ("function", "f")),
        ("a.ml", "let square x = x * x\n", ("function", "square")),
    ],
)
def test_more_languages(path: str, code: str, expected: tuple[str, str]) -> None:
    assert expected in kinds(path, code)


def test_javascript_object_literals_of_functions_are_containers_of_methods() -> None:
    code = src("""
        /** Helpers. */
        const helpers = {
          /** Merge two objects. */
          merge(a, b) {
            return { ...a, ...b };
          },
          split: function (s) {
            return s.split(",");
          },
          join: (xs) => xs.join(","),
          version: "1.0",
        };

        const settings = { retries: 3, timeout: 10 };

        module.exports = {
          retry(n) {
            return n + 1;
          },
        };
    """)
    chunks = chunk("lib/helpers.js", code)
    assert [(c.kind, c.symbol) for c in chunks if c.symbol] == [
        ("object", "helpers"),
        ("method", "helpers.merge"),
        ("method", "helpers.split"),
        ("method", "helpers.join"),
        ("object", "helpers"),  # its members after the last function
        ("object", "exports"),
        ("method", "exports.retry"),
    ]
    assert by_symbol(chunks, "helpers.merge").text.lstrip().startswith("/** Merge two objects. */")
    # An object of plain values stays with the module's code.
    assert any(c.kind == "module" and "retries: 3" in c.text for c in chunks)


def test_typescript_default_exports_arrow_consts_and_class_fields_are_named() -> None:
    code = src("""
        export default function parse(text: string): number {
          return Number(text);
        }

        export const toJSONSchema = (schema: Schema): JSONSchema => {
          return convert(schema);
        };

        export class Form {
          onSubmit = (event: Event) => {
            event.preventDefault();
          };
          static count = 0;
        }
    """)
    assert kinds("src/parse.ts", code) == [
        ("function", "parse"),
        ("function", "toJSONSchema"),
        ("class", "Form"),
        ("method", "Form.onSubmit"),
        ("class", "Form"),
    ]
