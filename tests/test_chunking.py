"""Tests for cidx.chunking: definitions per language, markdown, line windows.

Every input chunked through `chunk` is also checked against the invariants
all chunkers promise (text equals the lines, no blank chunks, full coverage
of non-blank lines, no overlap outside the windows of one range, bounded
size); `test_invariants_hold_for_every_input` re-runs them over the whole
collection at the end.
"""

from __future__ import annotations

import itertools
import random
import textwrap

import pytest

import cidx.chunking._dispatch as dispatch
from cidx.chunking import CHUNKER_VERSION, Chunk, ChunkedFile, chunk_file, detect_language
from cidx.chunking._code import has_spec
from cidx.chunking._text import (
    MAX_CHUNK_CHARS,
    MAX_CHUNK_LINES,
    TEXT_WINDOW_LINES,
    WINDOW_LINES,
)

_SEEN: list[tuple[str, str]] = []


def file_lines(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def check_invariants(rel_path: str, text: str, result: ChunkedFile) -> None:
    lines = file_lines(text)
    covered: set[int] = set()
    for c in result.chunks:
        assert 1 <= c.start_line <= c.end_line <= len(lines), c
        expected = "\n".join(lines[c.start_line - 1 : c.end_line])
        if c.start_line == c.end_line and len(expected) > MAX_CHUNK_CHARS:
            assert c.text == expected[:MAX_CHUNK_CHARS]  # one pathological line
        else:
            assert c.text == expected, c
            assert len(c.text) <= MAX_CHUNK_CHARS, c
        assert c.text.strip(), c
        assert "\r\n" not in c.text
        assert c.end_line - c.start_line + 1 <= MAX_CHUNK_LINES, c
        covered.update(range(c.start_line, c.end_line + 1))
    missing = [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered]
    assert not missing, f"{rel_path}: lines {missing[:10]} are in no chunk"
    ordered = sorted(result.chunks, key=lambda c: (c.start_line, c.end_line))
    assert ordered == result.chunks, "chunks are not in file order"
    for a, b in itertools.pairwise(ordered):
        if b.start_line <= a.end_line:
            # Only windows over one oversized range may share lines.
            assert (a.kind, a.symbol) == (b.kind, b.symbol), (a, b)


def chunk(rel_path: str, text: str, *, fallback_ok: bool = False) -> list[Chunk]:
    result = chunk_file(rel_path, text)
    check_invariants(rel_path, text, result)
    if not fallback_ok and (result.language == "markdown" or has_spec(result.language)):
        # Line windows here would mean the structured chunker failed and the
        # dispatcher quietly fell back.
        assert all(c.kind != "text" for c in result.chunks), result
    _SEEN.append((rel_path, text))
    return result.chunks


def kinds(rel_path: str, text: str) -> list[tuple[str, str]]:
    return [(c.kind, c.symbol) for c in chunk(rel_path, text)]


def by_symbol(chunks: list[Chunk], symbol: str) -> Chunk:
    matches = [c for c in chunks if c.symbol == symbol]
    assert len(matches) == 1, (symbol, [(c.kind, c.symbol) for c in chunks])
    return matches[0]


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


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

PYTHON = src('''
    """Module docstring."""
    import os
    from typing import Any

    TIMEOUT = 5


    # Comment about the class.
    @dataclass
    class Session(Base):
        """A session."""

        retries: int = 3

        # Comment about request.
        @retry(3)
        def request(self, method: str) -> Any:
            def helper() -> int:
                return 1
            return helper()

        class Config:
            strict = True

            def load(self) -> None:
                pass

        timeout = property(lambda self: 5)

        def close(self) -> None:
            pass


    async def fetch(url: str) -> bytes:
        return b""


    if __name__ == "__main__":
        fetch("x")
''')


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


# --- other languages -------------------------------------------------------

GO = src("""
    package server

    import "net/http"

    // Server serves requests.
    // It is safe for concurrent use.
    type Server struct {
        addr string
    }

    type (
        Handler interface{ Serve() }
        ID      int
    )

    // Start starts the server.
    func (s *Server) Start() error {
        return nil
    }

    func (c Cache[K, V]) Get(k K) V {
        var zero V
        return zero
    }

    func New(addr string) *Server {
        return &Server{addr: addr}
    }
""")


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


RUST = src("""
    use std::fmt;

    /// A point.
    #[derive(Debug, Clone)]
    pub struct Point<T> {
        x: T,
    }

    impl<T: fmt::Display> fmt::Display for Point<T> {
        /// Formats it.
        fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{}", self.x)
        }
    }

    pub trait Shape {
        fn area(&self) -> f64;
        fn name(&self) -> String {
            String::new()
        }
    }

    mod geometry {
        pub fn origin() -> i32 {
            0
        }
    }

    mod tests;

    fn main() {}
""")


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


C_SOURCE = src("""
    #include <stdio.h>

    /* Allocates a buffer. */
    static char *make_buffer(size_t n) {
        return malloc(n);
    }

    typedef struct {
        int x;
    } point_t;

    struct list {
        struct list *next;
    };

    int prototype(int);

    #ifdef DEBUG
    void debug_dump(void) {
    }
    #endif
""")


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


CPP = src("""
    namespace net {

    class Socket : public Base {
     public:
      Socket();
      int fd() const { return fd_; }

     private:
      int fd_;
    };

    template <typename T>
    T Socket::read() {
      return T();
    }

    std::string& Socket::name() { return name_; }

    }  // namespace net
""")


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


JAVASCRIPT = src("""
    import { api } from "./api.js";

    /**
     * Fetches a user.
     */
    export async function getUser(id) {
      return api.get(id);
    }

    export const formatName = (user) => {
      return user.first + " " + user.last;
    };

    const LIMIT = 10;

    export default class UserList extends Component {
      state = { users: [] };

      onClick = (event) => {
        this.select(event.target);
      };

      render() {
        return null;
      }
    }

    Widget.prototype.draw = function () {
      paint(this);
    };

    module.exports.helper = function () {
      return 1;
    };
""")


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


TYPESCRIPT = src("""
    export interface User {
      id: number;
      name(): string;
    }

    export type Id = string | number;

    enum Color {
      Red,
      Green,
    }

    namespace Util {
      export function clamp(x: number): number {
        return x;
      }
    }

    @Injectable()
    export class UserService {
      constructor(private http: Http) {}

      abstract find(id: Id): User;

      // Loads one user.
      @Get(":id")
      async load(id: Id): Promise<User> {
        return this.http.get(id);
      }
    }
""")


def test_typescript_interfaces_types_enums_namespaces() -> None:
    chunks = chunk("user.ts", TYPESCRIPT)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("class", "User"),
        ("class", "Id"),
        ("class", "Color"),
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


JAVA = src("""
    package app;

    import java.util.List;

    /** A repository. */
    @Repository
    public class UserRepo extends Base {
        private final List<User> users;

        /** Finds one. */
        @Override
        public User find(int id) {
            return users.get(id);
        }

        abstract void flush();

        UserRepo() {
            super();
        }

        static class Cache {
            void clear() {}
        }
    }
""")


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
        ("class", "App.Services.IMailer"),
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


def test_minified_javascript_is_bounded() -> None:
    code = ";".join(f"function f{i}(a){{return a+{i}}}" for i in range(3000))
    chunks = chunk("dist/app.min.js", code)
    assert len(chunks) == 1
    assert len(chunks[0].text) == MAX_CHUNK_CHARS


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

MARKDOWN = src("""
    ---
    title: Guide
    tags: [cli, "search"]
    aliases: Handbook
    ---

    Welcome text.

    # Install

    Steps below.

    ## From source

    ```bash
    # not a heading
    make install
    ```

    ## From PyPI
    pip install it

    Usage
    =====

    ~~~
    ## still code
    ~~~

    Options
    -------
    Text.
""")


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
    inputs = _SEEN or [("a.py", PYTHON), ("a.go", GO), ("g.md", MARKDOWN)]
    for path, text in [*inputs, ("a.rs", RUST), ("a.java", JAVA), ("a.ts", TYPESCRIPT)]:
        check_invariants(path, text, chunk_file(path, text))
