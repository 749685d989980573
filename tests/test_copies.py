"""Generated copies of one JS/TS definition are shown once, by the source, with the rest in `also`."""

from __future__ import annotations

from pathlib import Path

from cidx.search import copy_family
from tests.conftest import run_cidx, write_files

SOURCE = """\
/** Convert a schema to JSON schema. */
export function toJSONSchema(schema: Schema, opts?: Options): JSONSchema {
  const ctx = new JSONSchemaContext(opts);
  const result = ctx.process(schema);
  return ctx.emit(result);
}

export function fromJSONSchema(json: JSONSchema): Schema {
  return parseJsonSchema(json);
}
"""
COMPILED = """\
"use strict";
/** Convert a schema to JSON schema. */
function toJSONSchema(schema, opts) {
  const ctx = new JSONSchemaContext(opts);
  const result = ctx.process(schema);
  return ctx.emit(result);
}
exports.toJSONSchema = toJSONSchema;
"""
DECLARATION = """\
/** Convert a schema to JSON schema. */
export declare function toJSONSchema(schema: Schema, opts?: Options): JSONSchema;
export declare function fromJSONSchema(json: JSONSchema): Schema;
"""
# A package as published: its source, and its build output beside it (zod's layout).
FILES = {
    "src/v4/json-schema.ts": SOURCE,
    "v4/json-schema.js": COMPILED,
    "v4/json-schema.cjs": COMPILED,
    "v4/json-schema.d.ts": DECLARATION,
    "v4/json-schema.d.cts": DECLARATION,
    "v4/json-schema.js.map": '{"version":3,"sources":["../src/v4/json-schema.ts"],"mappings":"AAAA"}\n',
    "lib/bundle.js": COMPILED.replace("exports.", "module.exports."),
}


def test_copy_family_strips_extensions_and_build_folders() -> None:
    assert copy_family("src/v4/core/api.ts") == "v4/core/api"
    assert copy_family("dist/cjs/v4/core/api.cjs") == "v4/core/api"
    assert copy_family("v4/core/api.d.cts") == "v4/core/api"
    assert copy_family("v4/core/api.js.map") == "v4/core/api"
    assert copy_family("pkg/api.py") is None


def test_copies_fold_into_the_source_definition(tmp_path: Path) -> None:
    root = tmp_path / "zodlike"
    root.mkdir()
    write_files(root, FILES)
    for mode in ("hybrid", "keyword", "semantic"):
        results = run_cidx(
            ["query", "convert a schema to JSON schema", "--json", "-n", "3", "--mode", mode],
            root,
        ).json()["results"]
        first = results[0]
        assert (first["path"], first["symbol"]) == ("src/v4/json-schema.ts", "toJSONSchema"), mode
        also = {a["path"] for a in first["also"]}
        assert {"v4/json-schema.js", "v4/json-schema.cjs", "lib/bundle.js"} <= also, mode
        assert {"v4/json-schema.d.ts", "v4/json-schema.d.cts"} <= also, mode
        # No copy of it is listed again below.
        shown = [(r["path"], r["symbol"]) for r in results[1:]]
        assert all(sym != "toJSONSchema" for _, sym in shown), (mode, shown)
        assert not any(p.endswith((".d.ts", ".d.cts")) for p, _ in shown), (mode, shown)


def test_the_human_output_lists_the_other_copies(tmp_path: Path) -> None:
    root = tmp_path / "zodlike"
    root.mkdir()
    write_files(root, FILES)
    out = run_cidx(["query", "convert a schema to JSON schema", "-n", "1"], root).stdout
    assert "src/v4/json-schema.ts:1-6" in out
    assert "also in " in out and "v4/json-schema.cjs" in out


def test_same_names_in_unrelated_files_are_not_folded(tmp_path: Path) -> None:
    root = tmp_path / "two"
    root.mkdir()
    write_files(
        root,
        {
            "src/http.ts": "export function parse(body: string): Request {\n"
            "  const lines = body.split('\\r\\n');\n  return new Request(lines);\n}\n",
            "src/cli.ts": "export function parse(argv: string[]): Options {\n"
            "  const flags = argv.filter((a) => a.startsWith('--'));\n  return toOptions(flags);\n}\n",
        },
    )
    results = run_cidx(["query", "parse", "--json", "-n", "5"], root).json()["results"]
    assert sorted(r["path"] for r in results if r["symbol"] == "parse") == [
        "src/cli.ts",
        "src/http.ts",
    ]
    assert all(r["also"] == [] for r in results)
