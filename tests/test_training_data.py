"""The training pipeline's data steps on a tiny corpus: mining, the hygiene filter, dedup, split.

These need no torch (CI runs them); the training run itself has its smoke
test in training/tests/ (see training/README.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from training.fetch import wanted
from training.hygiene import (
    BENCHMARK_PACKAGES,
    ContentFilter,
    is_benchmark_folder,
    is_benchmark_package,
    is_vendored,
)
from training.mine import Pair, dedup, first_sentence, is_validation, main, mine_file, name_words

PY = '''\
def retry_failed_uploads(queue, attempts=3):
    """Send every failed upload again, backing off between tries.

    More detail here.
    """
    for item in queue.failed():
        item.send(retries=attempts)
'''
TS = """\
/**
 * Convert a schema to its JSON schema form.
 * @param schema the schema
 */
export function toJSONSchema(schema: Schema): JSONSchema {
  const ctx = new Context();
  return ctx.emit(schema);
}
"""
GO = """\
package router

// NewRouter returns a router that matches paths by prefix.
func NewRouter(prefix string) *Router {
\tr := &Router{prefix: prefix}
\treturn r
}
"""
RUST = """\
/// Parses a semantic version from a string slice.
pub fn parse_version(text: &str) -> Result<Version, Error> {
    let parts: Vec<&str> = text.split('.').collect();
    Version::from_parts(&parts)
}
"""


def _pairs(language: str, rel: str, text: str) -> list[Pair]:
    return list(mine_file(language, "pkg-1.0", rel, text))


def test_doc_comment_pairs_have_the_first_sentence_and_code_without_the_doc() -> None:
    cases = [
        ("python", "up.py", PY, "Send every failed upload again, backing off between tries."),
        ("typescript", "src/schema.ts", TS, "Convert a schema to its JSON schema form."),
        ("go", "router.go", GO, "Returns a router that matches paths by prefix."),
        ("rust", "src/lib.rs", RUST, "Parses a semantic version from a string slice."),
    ]
    for language, rel, text, query in cases:
        docs = [p for p in _pairs(language, rel, text) if p.source == "doc"]
        assert len(docs) == 1, (language, docs)
        pair = docs[0]
        assert pair.query == query
        # The code side is what cidx embeds: kind and symbol, then the code.
        first, _, body = pair.code.partition("\n")
        assert first.split(" ", 1)[0] in ("function", "method")
        for doc_word in ("backing off", "JSON schema form", "matches paths", "semantic version"):
            assert doc_word not in body
        assert pair.language == language


# prosemirror style: `///` docs on a class's methods, an `@internal` one, a
# directive between the doc and the code.
TS_TRIPLE = """\
export class Mark {
  /// @internal
  constructor(readonly type: MarkType, readonly attrs: Attrs) {}

  /// Given a set of marks, create a new set which contains this one as
  /// well, in the right position. If this mark is already in the set,
  /// the set itself is returned.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addToSet(set: readonly Mark[]): readonly Mark[] {
    let copy, placed = false
    // Walk the set once, keeping its order.
    for (let i = 0; i < set.length; i++) copy = set.slice(0, i)
    return copy || set
  }
}
"""
# `//` blocks: a doc, a licence header, commented-out code, and a note
# separated from the function by a blank line.
JS_LINES = """\
// Copyright (c) 2024 Example Authors. Licensed under the MIT License.
function licensedHelper(a, b) {
  const sum = a + b;
  return sum * 2;
}

// Split a path into its segments, dropping empty ones.
// Leading and trailing slashes are ignored.
function splitPathSegments(path) {
  const parts = path.split("/");
  return parts.filter(Boolean);
}

// const old = legacyRouter(options);
// old.mount();
function mountRouterTable(options) {
  const table = new Table(options);
  return table.mount();
}

// Helpers for the routing table below, kept in one place.

function joinRouteParts(parts) {
  const joined = parts.join("/");
  return "/" + joined;
}
"""


def test_line_comment_docs_above_js_and_ts_definitions() -> None:
    docs = {
        p.symbol: p for p in _pairs("typescript", "src/mark.ts", TS_TRIPLE) if p.source == "doc"
    }
    assert list(docs) == ["Mark.addToSet"]
    pair = docs["Mark.addToSet"]
    assert pair.query == (
        "Given a set of marks, create a new set which contains this one as well, "
        "in the right position."
    )
    assert "right position" not in pair.code and "set itself" not in pair.code
    # Comments inside the body and directives stay code.
    assert "// Walk the set once" in pair.code and "eslint-disable" in pair.code

    js = {p.symbol: p for p in _pairs("javascript", "lib/paths.js", JS_LINES) if p.source == "doc"}
    assert list(js) == ["splitPathSegments"]
    assert js["splitPathSegments"].query == "Split a path into its segments, dropping empty ones."
    assert "Leading and trailing" not in js["splitPathSegments"].code
    assert js["splitPathSegments"].language == "javascript"
    # The undocumented ones still give name pairs, with their code intact.
    names = {
        p.symbol: p for p in _pairs("javascript", "lib/paths.js", JS_LINES) if p.source == "name"
    }
    assert set(names) == {
        "licensedHelper",
        "splitPathSegments",
        "mountRouterTable",
        "joinRouteParts",
    }
    assert "Copyright" in names["licensedHelper"].code


def test_only_the_first_piece_of_a_long_definition_gives_a_doc_pair() -> None:
    steps = "\n".join(
        f"  // Step {i}: move the cursor past the next token here.\n"
        f"  cursor = advanceCursor(cursor, tokens[{i}], options);\n"
        for i in range(60)
    )
    text = (
        "// Scan a template for placeholders, one token at a time.\n"
        f"function scanTemplate(tokens, options) {{\n  let cursor = 0;\n{steps}  return cursor;\n}}\n"
    )
    pairs = _pairs("javascript", "lib/scan.js", text)
    assert len({p.code for p in pairs if p.source == "name"}) > 1  # it was cut into pieces
    docs = [p.query for p in pairs if p.source == "doc"]
    assert docs == ["Scan a template for placeholders, one token at a time."]


# date-fns style: a stray block left above, then a doc of tags only.
JS_TAGS = """\
/**
 * The {@link addDays} function options.
 */

/**
 * @name addDays
 * @category Day Helpers
 * @summary Add the specified number of days to the given date.
 *
 * @param date - The date to be changed
 * @returns The new date with the days added
 */
export function addDays(date, amount, options) {
  const _date = toDate(date, options?.in);
  return constructFrom(_date, _date.getDate() + amount);
}
"""


def test_jsdoc_is_the_block_next_to_the_code_and_may_say_it_in_a_summary_tag() -> None:
    docs = [p for p in _pairs("javascript", "addDays.js", JS_TAGS) if p.source == "doc"]
    assert [p.query for p in docs] == ["Add the specified number of days to the given date."]
    assert "function options" not in docs[0].code and "@summary" not in docs[0].code
    assert first_sentence("@name f\n@description\nParses a duration from an ISO string.\n") == (
        "Parses a duration from an ISO string."
    )
    assert first_sentence("@param x - the value\n@returns the value doubled") == ""


def test_name_pairs_split_identifiers() -> None:
    assert name_words("UploadQueue.retryFailedUploads") == ["retry", "failed", "uploads"]
    assert name_words("parse_HTTPHeader") == ["parse", "http", "header"]
    names = [p.query for p in _pairs("python", "up.py", PY) if p.source == "name"]
    assert names == ["retry failed uploads"]


def test_first_sentence_rules() -> None:
    assert first_sentence("Returns\n-------\nint The count.") == ""
    assert first_sentence("Short one.") == ""
    assert first_sentence("See {@link Other} for the details of this.") == ""
    assert first_sentence("Uses {@link Cache the cache} to store values. More.") == (
        "Uses the cache to store values."
    )
    assert first_sentence("Router is the main type of this package.", "Router") == (
        "It is the main type of this package."
    )


def test_hygiene_refuses_benchmark_packages_vendored_copies_and_their_content(
    tmp_path: Path,
) -> None:
    assert is_benchmark_package("Requests") and is_benchmark_package("@tanstack/query-core")
    assert is_benchmark_package("librust-serde-json-dev") and not is_benchmark_package("urllib3")
    assert is_benchmark_folder("golang-github-gorilla-mux-dev-1.8.0-1")
    assert is_benchmark_folder("_tanstack_query-core-5.1.0") and not is_benchmark_folder(
        "requests-toolbelt-1.0"
    )
    assert is_vendored("pip/_vendor/requests/api.py") and not is_vendored("pip/api.py")

    bench = tmp_path / "bench" / "up"
    (bench / "corpus").mkdir(parents=True)
    (bench / "corpus" / "up.py").write_text(PY.replace('    """Send', '    """Xend'))
    (bench / "queries.json").write_text(
        json.dumps([{"query": "Verify a token against its secret."}])
    )
    content = ContentFilter.from_benchmarks(tmp_path / "bench")
    mined = _pairs("python", "copy.py", PY)
    assert all(content.contaminated(p.query, p.code.split("\n")) for p in mined)
    assert content.contaminated("verify a token against its secret", [])
    other = _pairs("go", "router.go", GO)
    assert not any(content.contaminated(p.query, p.code.split("\n")) for p in other)


def test_every_benchmark_corpus_is_named_by_the_hygiene_filter() -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    try:
        from _corpora import CORPORA
    finally:
        sys.path.pop(0)
    named = {n for names in BENCHMARK_PACKAGES.values() for n in names}
    for corpus in CORPORA:
        assert corpus.package in named, corpus
        assert is_benchmark_package(corpus.package)


def test_fetch_keeps_source_files_and_leaves_tests_and_declarations() -> None:
    for rel in ("src/AbiItem.ts", "lib/index.js", "src/view/input.tsx", "core/Hex.mts"):
        assert wanted("typescript", rel), rel
    for rel in ("src/index.d.ts", "core/_test/Hex.ts", "core/Hex.test-d.ts", "src/a.test.tsx",
                "core/Cbor.fuzz.ts", "src/__mocks__/fs.ts", "dist/index.js", "src/x.bench.ts"):  # fmt: skip
        assert not wanted("typescript", rel), rel


def test_dedup_keeps_one_pair_per_code_and_source() -> None:
    a = Pair("q1", "function f\ndef f():\n    return 1", "python", "a-1", "doc", "a.py", "f")
    b = Pair("q2", "function f\ndef f():\n        return 1", "python", "b-1", "doc", "b.py", "f")
    c = Pair("f", a.code, "python", "a-1", "name", "a.py", "f")
    assert dedup([a, b, c]) == [a, c]


def test_mining_end_to_end_writes_pairs_and_a_manifest(tmp_path: Path) -> None:
    src = tmp_path / "cache" / "src"
    packages = {
        ("python", "uploads-1.0"): {"up.py": PY, "_vendor/copy/up2.py": PY.replace("Send", "Post")},
        ("typescript", "schemas-2.0"): {"src/schema.ts": TS},
        ("go", "golang-router-dev-1.0"): {"router.go": GO},
        ("rust", "librust-versions-dev-1.0"): {"src/lib.rs": RUST},
        ("python", "requests-2.0"): {"api.py": PY.replace("Send every", "Send all")},
        ("go", "golang-github-gorilla-mux-dev-1.8.0-1"): {"mux.go": GO.replace("router", "muxer")},
    }
    for (language, name), files in packages.items():
        for rel, text in files.items():
            path = src / language / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    out, manifest = tmp_path / "pairs", tmp_path / "manifest.json"
    assert main(["--src", str(src), "--bench", str(tmp_path / "none"), "--out", str(out),
                 "--manifest", str(manifest)]) == 0  # fmt: skip
    pairs = [json.loads(line) for f in ("train", "val") for line in (out / f"{f}.jsonl").open()]
    assert {p["package"] for p in pairs} == {
        "uploads-1.0", "schemas-2.0", "golang-router-dev-1.0", "librust-versions-dev-1.0"
    }  # fmt: skip
    assert not any(p["path"].startswith("_vendor/") for p in pairs)
    data = json.loads(manifest.read_text())
    assert data["dropped"]["benchmark package"] > 0
    listed = {(p["language"], p["name"]) for p in data["packages"]}
    assert ("python", "uploads-1.0") in listed and ("rust", "librust-versions-dev-1.0") in listed
    for entry in data["packages"]:
        assert entry["split"] == ("val" if is_validation(entry["name"]) else "train")


def _pair(query: str, code: str, package: str = "p") -> dict[str, str]:
    return {"query": query, "code": code, "language": "rust", "package": package, "source": "doc"}


def _buffer_pairs() -> list[dict[str, str]]:
    return [
        _pair("Read a big-endian u16.", "fn get_u16(&mut self) -> u16 { self.read_be(2) }"),
        _pair("Read a little-endian i16.", "fn get_i16_le(&mut self) -> i16 { self.read_le(2) }"),
        _pair("Drop every byte.", "fn clear(&mut self) { self.len = 0 }"),
        # Same code as the first, asked by name: never its negative.
        _pair("get u16", "fn get_u16(&mut self) -> u16 { self.read_be(2) }"),
        # The best match for the first query, but in another package.
        _pair("Read u16 big-endian.", "fn get_u16_be(&mut self) -> u16 { read(2) }", "other"),
    ]


def test_hard_negatives_are_siblings_from_the_same_package_never_the_pair_itself() -> None:
    from training.negatives import hard_negatives

    pairs = [
        *_buffer_pairs(),
        # Documented exactly as the first: overloads are no negatives of each other.
        _pair("Read a big-endian u16.", "fn get_u16_checked(&mut self) -> u16 { self.read_be(2) }"),
    ]
    negatives = hard_negatives(pairs, seed=1)
    assert negatives[0] == 1  # the i16 sibling: shares "read", "16" with the query
    assert negatives[3] in (1, 5)
    assert negatives[4] is None  # alone in its package
    assert negatives == hard_negatives(pairs, seed=1)
    for i, j in enumerate(negatives):
        if j is not None:
            assert pairs[j]["package"] == pairs[i]["package"]
            assert pairs[j]["code"] != pairs[i]["code"]


def _unit(*xs: float) -> list[float]:
    v = np.array(xs, dtype=np.float32)
    return list(v / np.linalg.norm(v))


def test_model_negatives_are_the_models_mistakes_never_a_copy_of_the_answer() -> None:
    from training.negatives import TOP, model_negatives

    pairs = [_pair(f"query {i}", f"fn f{i}() {{ {i} }}") for i in range(6)]
    pairs.append(_pair("query 6", "fn f6() { 6 }", "other"))
    codes = np.array([
        _unit(1, 0, 0),        # 0: the answer to query 0
        _unit(1, 0.1, 0),      # 1: a copy of 0 (cosine > 0.99): never 0's negative
        _unit(0.8, 0.6, 0),    # 2, 3, 4: what the model ranks next for query 0
        _unit(0.7, 0.7, 0.1),
        _unit(0.6, 0.8, 0),
        _unit(0, 0, 1),        # 5: far from everything
        _unit(1, 0, 0),        # 6: the best match, but in another package
    ], dtype=np.float32)  # fmt: skip
    queries = codes.copy()
    for seed in range(20):
        negatives = model_negatives(pairs, seed, queries, codes)
        assert negatives[0] in (2, 3, 4)
        assert negatives[6] is None  # alone in its package
        assert negatives == model_negatives(pairs, seed, queries, codes)
    assert TOP == 3


def test_mining_negatives_with_the_bundled_model_writes_one_per_pair(tmp_path: Path) -> None:
    from cidx.embedding._model import bundled_model
    from training.negatives import main

    pairs = _buffer_pairs()
    folder = tmp_path / "pairs"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    out = tmp_path / "negatives.json"
    args = ["--pairs", str(folder), "--model", str(bundled_model().path), "--seed", "3"]
    assert main([*args, "--out", str(out)]) == 0
    negatives = json.loads(out.read_text())["negatives"]
    assert len(negatives) == len(pairs)
    assert negatives[4] is None
    assert negatives[0] in (1, 2) and negatives[3] in (1, 2)  # never its own code
    assert negatives[1] in (0, 2)
    again = tmp_path / "again.json"
    assert main([*args, "--out", str(again)]) == 0
    assert json.loads(again.read_text())["negatives"] == negatives
    assert len(list(tmp_path.glob("vectors-*.npz"))) == 1  # embedded once, then reused
    hybrid = tmp_path / "next-stage" / "hybrid.json"  # a folder not made yet
    assert main([*args, "--out", str(hybrid), "--ranker", "hybrid"]) == 0
    written = json.loads(hybrid.read_text())
    assert written["ranker"] == "hybrid" and written["negatives"][4] is None


def test_hybrid_mined_negatives_are_what_the_hybrid_search_ranks_high() -> None:
    """Ranked as cidx's search does, code sharing the query's words and name comes up."""
    from training.negatives import model_negatives

    def pair(query: str, symbol: str, code: str) -> dict[str, str]:
        return _pair(query, code) | {"symbol": symbol}

    pairs = [
        pair("Parse a header.", "Reader::read_all", "fn read_all(&mut self) { self.go() }"),
        pair("x", "Reader::parse_header_line", "fn parse_header_line(&self) { parse(line) }"),
        pair("y", "Reader::aa", "fn aa() { 1 }"),
        pair("z", "Reader::bb", "fn bb() { 2 }"),
        pair("w", "Reader::cc", "fn cc() { 3 }"),
    ]

    def at(cos: float) -> list[float]:
        return _unit(cos, (1 - cos * cos) ** 0.5, 0)

    codes = np.array([_unit(1, 0, 0), at(0.5), at(0.6), at(0.59), at(0.58)], dtype=np.float32)
    queries = codes.copy()
    by_model = {model_negatives(pairs, s, queries, codes)[0] for s in range(30)}
    by_search = {model_negatives(pairs, s, queries, codes, hybrid=True)[0] for s in range(30)}
    assert by_model == {2, 3, 4}  # the model alone never ranks the parser high
    assert 1 in by_search and 4 not in by_search
