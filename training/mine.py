"""Mining training pairs from the fetched sources: (doc comment → code) and (name → code).

    python -m training.mine          # reads .cache/src, writes .cache/pairs/{train,val}.jsonl
                                     # and data_manifest.json

Every file is chunked by cidx's own chunker, so the code side of a pair is
exactly what cidx embeds for that definition (`representation.dense_text`:
kind, qualified symbol, code). As in the retrieval benchmark, the doc
comment is taken out of the code and the first sentence of it becomes the
query: the model learns to find code by what it does, not by a copy of its
comment. Definitions with a multi-word name also give a (name words → code)
pair, whether documented or not.

Then: the hygiene filter (`hygiene`), exact de-duplication (the same code
in two packages, or twice in one, is one pair), a cap per package so a
few large packages do not dominate, and a split by package — whole
packages are held out for validation, never single functions.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import random
import re
import textwrap
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cidx.chunking import Chunk, chunk_file
from cidx.representation import dense_text
from training.hygiene import ContentFilter, is_benchmark_folder, is_vendored

HERE = Path(__file__).parent
CACHE = HERE / ".cache"
PAIRS = CACHE / "pairs"
MANIFEST = HERE / "data_manifest.json"
BENCH = HERE.parent / "benchmarks" / ".cache" / "bench"

SEED = 20261129
VALIDATION_SHARE = 0.1
MAX_DOC_PAIRS_PER_PACKAGE = 600
MAX_NAME_PAIRS_PER_PACKAGE = 150
DEFINITIONS = frozenset({"function", "method", "class"})


@dataclass(frozen=True)
class Pair:
    query: str
    code: str  # the dense text cidx embeds for the definition
    language: str
    package: str
    source: str  # "doc" or "name"
    path: str
    symbol: str


# -- doc comments ----------------------------------------------------------------------------

_BAD_STARTS = ("see ", "see:", "like ", "same as ", "alias ", "an alias", "deprecated", "todo",
               "fixme", "xxx", "internal ", "@", ":", "..", "#", "-", "|", "```", "<", "copyright",
               "license", "spdx", "eslint", "istanbul", "prettier", "jshint", "noinspection")  # fmt: skip
_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)")
# A JSDoc tag's text: the rest of its line and the lines after it, up to a blank line or tag.
_TAG_TEXT = r"\b(.*(?:\n(?![ \t]*@)(?![ \t]*$).*)*)"
_SUMMARY_TAG = re.compile(r"(?m)^[ \t]*@summary" + _TAG_TEXT)
_DESCRIPTION_TAG = re.compile(r"(?m)^[ \t]*@description" + _TAG_TEXT)


def clean_markup(text: str) -> str:
    text = re.sub(
        r"\{@(?:link|linkcode|linkplain)\s+([^}|\s]+)(?:[|\s]+([^}]*))?\}",
        lambda m: (m.group(2) or m.group(1)).strip(),
        text,
    )
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"\[(`[^`\]]+`)\]", r"\1", text)
    return re.sub(r"</?[a-zA-Z][^>]*>", "", text)


def first_sentence(doc: str, name: str = "") -> str:
    """The query a doc comment gives: its first sentence, or "" if it says too little."""
    doc = clean_markup(doc)
    paragraph = next((p for p in re.split(r"\n\s*\n", doc) if p.strip()), "")
    # JSDoc: tags end the description; a doc of tags only may say it in one of them.
    paragraph = re.split(r"(?m)^\s*@\w", paragraph)[0]
    if not paragraph.strip():
        tag = _SUMMARY_TAG.search(doc) or _DESCRIPTION_TAG.search(doc)
        paragraph = tag.group(1) if tag else ""
    flat = " ".join(paragraph.split())
    m = _SENTENCE.match(flat)
    text = (m.group(1) if m else flat).strip()
    if name:
        # Go style "NewRouter returns a router." -> "Returns a router."
        words = text.split(" ", 1)
        if len(words) == 2 and words[0].strip("`*") in (name, name.split(".")[-1]):
            rest = words[1]
            if rest.startswith(("is ", "are ")):
                rest = "It " + rest
            text = rest[:1].upper() + rest[1:]
    n_words = len(text.split())
    if re.search(r"-{3,}|={3,}|~{3,}|:param|:return", text):
        return ""  # a numpy/reST section header or field list, not a sentence
    if not 4 <= n_words <= 40 or text.lower().startswith(_BAD_STARTS):
        return ""
    return text


def python_doc(text: str) -> tuple[str, list[str]] | None:
    """(docstring, the chunk's lines without it) for a whole Python definition."""
    lines = text.split("\n")
    try:
        tree = ast.parse(textwrap.dedent(text))
    except (SyntaxError, ValueError):
        return None
    node = next(
        (
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ),
        None,
    )
    if node is None or not node.body:
        return None
    first = node.body[0]
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return None
    doc = ast.get_docstring(node) or ""
    end = first.end_lineno or first.lineno
    kept = lines[: first.lineno - 1] + lines[end:]
    if len(node.body) == 1:
        # A body that was only the docstring still needs a statement to be code.
        return None
    return doc, kept


_JSDOC = re.compile(r"/\*\*(?!/)(.*?)\*/", re.S)


def jsdoc(text: str) -> tuple[str, list[str]] | None:
    """(the JSDoc block above the definition, the chunk with every JSDoc block removed)."""
    m = None
    for found in _JSDOC.finditer(text):  # the last block of the comments above the code
        if text[: found.start()].strip(" \t\n") and not _only_comments(text[: found.start()]):
            break
        m = found
    if m is None:
        return None
    body = m.group(1)
    doc = "\n".join(re.sub(r"^\s*\*\s?", "", line) for line in body.split("\n"))
    stripped = _JSDOC.sub("", text)
    return doc, [line for line in stripped.split("\n")]


def _only_comments(prefix: str) -> bool:
    return all(
        not line.strip() or line.strip().startswith(("//", "@", "/*", "*"))
        for line in prefix.split("\n")
    )


def line_comment_doc(text: str, markers: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """Go `//` or Rust `///` docs: the comment lines at the top, and the rest without docs."""
    lines = text.split("\n")
    doc: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith(markers) and not stripped.startswith("//go:"):
            doc.append(re.sub(r"^(///?!?|//)\s?", "", stripped))
        elif stripped.startswith("#[") or (not stripped and not doc):
            pass  # Rust attributes sit among the doc lines
        else:
            break
        i += 1
    if not doc:
        return None
    kept = [
        line for line in lines
        if not (line.strip().startswith(markers) and not line.strip().startswith("//go:"))
    ]  # fmt: skip
    if markers == ("///",):
        kept = [line for line in kept if not line.strip().startswith("//!")]
    return "\n".join(doc), kept


# `//` lines above a JS/TS definition that are tool directives, not prose about it.
_JS_DIRECTIVE = re.compile(
    r"^//\s*(?:eslint|@ts-|#|prettier-|istanbul |c8 |biome-|jshint|global |noinspection)"
    r"|^///\s*<"
)
_LICENCE = re.compile(r"copyright|licen[cs]e|spdx|all rights reserved", re.IGNORECASE)


def js_line_doc(text: str) -> tuple[str, list[str]] | None:
    """A `///` or `//` comment block directly above a JS/TS definition, and the rest of it.

    The block ends at the first line of code; a blank line starts it afresh, so only
    the block touching the definition counts. Tool directives inside it are
    skipped; a licence header or commented-out code (a line ending in `;`, `{`
    or `}` before the first blank comment line) is no doc at all.
    """
    lines = text.split("\n")
    block: list[int] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            block = []
        elif not stripped.startswith("//"):
            break
        elif not _JS_DIRECTIVE.match(stripped):
            block.append(i)
    doc = [re.sub(r"^///?\s?", "", lines[i].strip()) for i in block]
    if not any(line.strip() for line in doc) or _LICENCE.search(" ".join(doc)):
        return None
    first_paragraph = "\n".join(doc).strip("\n").split("\n\n")[0].split("\n")
    if any(line.rstrip().endswith((";", "{", "}")) for line in first_paragraph):
        return None
    taken = set(block)
    return "\n".join(doc), [line for i, line in enumerate(lines) if i not in taken]


def doc_and_code(language: str, text: str) -> tuple[str, list[str]] | None:
    if language == "python":
        return python_doc(text)
    if language in ("javascript", "typescript", "tsx"):
        return jsdoc(text) or js_line_doc(text)
    if language == "go":
        return line_comment_doc(text, ("//",))
    if language == "rust":
        return line_comment_doc(text, ("///",))
    return None


# -- names -----------------------------------------------------------------------------------


def name_words(symbol: str) -> list[str]:
    """`Session.retryFailedUpload` -> ["retry", "failed", "upload"] (the defined name only)."""
    name = re.split(r"\.|::", symbol)[-1]
    parts = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", name)
    return [p.lower() for p in parts]


# -- mining ----------------------------------------------------------------------------------


def mine_file(language: str, package: str, rel: str, text: str) -> Iterator[Pair]:
    chunked = chunk_file(rel, text)
    lang = chunked.language
    # An npm package of one language may ship files of the other.
    language = {"tsx": "typescript"}.get(lang, lang)
    previous: Chunk | None = None
    for chunk in chunked.chunks:
        # A long definition is cut into (overlapping) pieces; only the first starts with its doc,
        # a later one may start with a comment from inside the body.
        continued = (
            previous is not None
            and (previous.kind, previous.symbol) == (chunk.kind, chunk.symbol)
            and previous.start_line < chunk.start_line <= previous.end_line + 1
        )
        previous = chunk
        if chunk.kind not in DEFINITIONS or not chunk.symbol:
            continue
        found = None if continued else doc_and_code(lang, chunk.text)
        if found is not None:
            doc, kept = found
            code_text = "\n".join(kept).strip("\n")
            query = first_sentence(doc, chunk.symbol.split(".")[-1])
            if query and sum(1 for line in kept if line.strip()) >= 2:
                code = dense_text(rel, _with_text(chunk, code_text))
                yield Pair(query, code, language, package, "doc", rel, chunk.symbol)
        else:
            code_text = chunk.text
        words = name_words(chunk.symbol)
        if len(words) >= 2 and code_text.count("\n") >= 2:
            code = dense_text(rel, _with_text(chunk, code_text))
            yield Pair(" ".join(words), code, language, package, "name", rel, chunk.symbol)


def _with_text(chunk: Chunk, text: str) -> Chunk:
    return Chunk(chunk.start_line, chunk.end_line, chunk.kind, chunk.symbol, text, chunk.meta)


def mine_package(language: str, package: str, root: Path) -> list[Pair]:
    pairs: list[Pair] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if is_vendored(rel):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        pairs.extend(mine_file(language, package, rel, text))
    return pairs


def code_key(code: str) -> str:
    return hashlib.blake2b(" ".join(code.split()).encode(), digest_size=12).hexdigest()


def dedup(pairs: Iterable[Pair]) -> list[Pair]:
    """One pair per code text and source (doc/name), and one per (query, code)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for pair in pairs:
        key = (pair.source, code_key(pair.code))
        if key in seen:
            continue
        seen.add(key)
        out.append(pair)
    return out


def cap(pairs: list[Pair], rng: random.Random) -> list[Pair]:
    """At most a fixed number of pairs of each source from one package (a random subset)."""
    by: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for pair in pairs:
        by[(pair.package, pair.source)].append(pair)
    out: list[Pair] = []
    for (_, source), group in sorted(by.items()):
        limit = MAX_DOC_PAIRS_PER_PACKAGE if source == "doc" else MAX_NAME_PAIRS_PER_PACKAGE
        if len(group) > limit:
            group = rng.sample(group, limit)
        out.extend(group)
    return out


def is_validation(package: str) -> bool:
    digest = hashlib.sha1(package.encode()).digest()
    return digest[0] / 256 < VALIDATION_SHARE


def hygiene(pairs: Iterable[Pair], content: ContentFilter) -> tuple[list[Pair], Counter[str]]:
    kept: list[Pair] = []
    dropped: Counter[str] = Counter()
    for pair in pairs:
        if is_benchmark_folder(pair.package):
            dropped["benchmark package"] += 1
        elif content.contaminated(
            pair.query if pair.source == "doc" else "", pair.code.split("\n")
        ):
            dropped["benchmark content"] += 1
        else:
            kept.append(pair)
    return kept, dropped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--src", type=Path, default=CACHE / "src")
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument("--out", type=Path, default=PAIRS)
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    a = ap.parse_args(argv)
    fetched_file = a.src.parent / "fetched.json"
    fetched = json.loads(fetched_file.read_text()) if fetched_file.exists() else {}
    by_path = {str(e.get("path", "")): e for e in fetched.values()}
    content = ContentFilter.from_benchmarks(a.bench)
    print(f"hygiene: {len(content.lines)} benchmark lines, {len(content.queries)} queries")
    rng = random.Random(SEED)
    mined: list[Pair] = []
    for lang_dir in sorted(p for p in a.src.iterdir() if p.is_dir()):
        for pkg_dir in sorted(p for p in lang_dir.iterdir() if p.is_dir()):
            mined.extend(mine_package(lang_dir.name, pkg_dir.name, pkg_dir))
    clean, dropped = hygiene(mined, content)
    unique = dedup(clean)
    dropped["duplicate"] = len(clean) - len(unique)
    final = cap(unique, rng)
    dropped["over the per-package cap"] = len(unique) - len(final)
    a.out.mkdir(parents=True, exist_ok=True)
    split: dict[str, list[Pair]] = {"train": [], "val": []}
    for pair in final:
        split["val" if is_validation(pair.package) else "train"].append(pair)
    for name, items in split.items():
        rng.shuffle(items)
        with open(a.out / f"{name}.jsonl", "w") as fh:
            for pair in items:
                fh.write(json.dumps(asdict(pair)) + "\n")
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for pair in final:
        counts[pair.package][pair.source] += 1
    packages = []
    for lang_dir in sorted(p for p in a.src.iterdir() if p.is_dir()):
        for pkg_dir in sorted(p for p in lang_dir.iterdir() if p.is_dir()):
            entry = by_path.get(pkg_dir.relative_to(a.src.parent).as_posix(), {})
            packages.append({
                "language": lang_dir.name,
                "name": entry.get("name", pkg_dir.name),
                "version": entry.get("version", ""),
                "registry": entry.get("registry", ""),
                "licence": entry.get("licence", ""),
                "split": "val" if is_validation(pkg_dir.name) else "train",
                "doc_pairs": counts[pkg_dir.name]["doc"],
                "name_pairs": counts[pkg_dir.name]["name"],
            })  # fmt: skip
    refused = sorted(
        f"{e['language']}:{e['name']} ({e['status']})"
        for e in fetched.values()
        if e.get("status") != "ok"
    )
    manifest = {
        "seed": SEED,
        "pairs": {k: len(v) for k, v in split.items()},
        "by_language": {
            lang: {s: sum(1 for p in final if p.language == lang and is_validation(p.package) == (s == "val"))
                   for s in ("train", "val")}
            for lang in sorted({p.language for p in final})
        },
        "dropped": dict(sorted(dropped.items())),
        "packages": packages,
        "refused": refused,
    }  # fmt: skip
    a.manifest.write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps({k: manifest[k] for k in ("pairs", "by_language", "dropped")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
