"""Search quality on the retrieval benchmark: many ranking variants, one index.

    python benchmarks/quality.py                       # every corpus, five languages, query-time variants
    python benchmarks/quality.py --lang go rust        # the corpora of some languages
    python benchmarks/quality.py requests jinja2       # named corpora
    python benchmarks/quality.py --index-variants 'model*' --only 'cidx hybrid'   # previous model vs shipped
    python benchmarks/quality.py --index-variants      # also rebuild per index-time variant
    python benchmarks/quality.py --candidate run.onnx --only 'cidx *'   # a training run's export
    python benchmarks/quality.py --index-variants 'bm25*' --only 'cidx*'
    python benchmarks/quality.py --latency 7           # query latency on 7 copies of every corpus
    python benchmarks/quality.py --embed-speed         # every earlier model vs the bundled one, chunks/s
    python benchmarks/quality.py --list                # every variant's name

Corpora (`_corpora.py`: Python wheels, npm tarballs, Debian Go and Rust
source packages, all pinned) are built on first use into
`benchmarks/.cache/bench/` by the public retrieval benchmark's
`build_corpus.py` and `build_corpus_multi.py` (CodeSearchNet-style:
`<name>/corpus` and `queries.json`). Figures are reported per corpus, per
language (the mean of its corpora) and as the mean of the five language
means.
Each corpus is copied to a temporary project and indexed
through the real code path (`cidx.service.open_index` → `Engine.sync`); every
query-time variant is then scored on that same index with run_eval.py's rule
(a hit is a result in the query's file whose lines overlap the function's
lines): MRR@10, R@1, R@5, R@10.

"cidx ..." variants run the real `Searcher` (with other `Ranking` weights
where named). "engine ..." variants send the same dense and BM25 searches to
Qdrant's own fusion. "client ..." variants fuse, in this file, the exact
dense and BM25 scores of the top 50 of each retriever, to compare
normalisations ("client cidx formula ..." is the shipped formula with one
ingredient swapped). Index-time variants patch the module that owns the
choice and rebuild the index in the same project, so texts already
embedded come from the embedding cache; their "index s" is the whole
rebuild and is a fair embedding-speed comparison only for variants that
change every dense text (max length). Ratios are against the engine RRF
that was cidx's hybrid ranking before these measurements: on the old index
when the "index before" variant is run, else on the shipped one.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cidx import service
from cidx.engine import Engine
from cidx.messages import QueryRequest
from cidx.search import Searcher
from cidx.store import Fusion, Hit, Nearest, StoreQuery

sys.path.insert(0, str(Path(__file__).parent))

from _corpora import BY_NAME, LANGUAGES, ensure
from _models import first_tuned_model, previous_model, second_tuned_model, third_tuned_model
from _quality_variants import (
    BASELINE,
    BEFORE,
    INDEX_VARIANTS,
    LIMIT,
    SHIPPED,
    VARIANTS,
    Scores,
    add_candidates,
    fetch_raw,
    load_queries,
)

PUBLIC = ("requests", "jinja2")


# -- running -------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    scores: dict[str, Scores] = field(default_factory=dict)  # per corpus
    index_seconds: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def temporary_project(benches: Sequence[Path], copies: int = 1) -> Iterator[Engine]:
    """A fresh project holding the corpora (each copy under its own folder when several)."""
    tmp = Path(tempfile.mkdtemp(prefix="cidx-quality-"))
    project = tmp / "project"
    try:
        if len(benches) == 1 and copies == 1:
            shutil.copytree(benches[0] / "corpus", project)
        else:
            for n in range(copies):
                for bench in benches:
                    shutil.copytree(bench / "corpus", project / f"copy{n}" / bench.name)
        with service.open_index(project, kind="benchmark", remote=False) as handle:
            yield handle.engine  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_corpus(
    bench: Path, variants: list[str], index_variants: list[str], rows: dict[str, Row]
) -> None:
    queries = load_queries(bench)
    with temporary_project([bench]) as engine:
        for ivar in index_variants:
            engine.parts.models.__dict__.pop("sparse", None)
            with INDEX_VARIANTS[ivar](engine):
                started = time.perf_counter()
                summary = engine.sync(clear=True)
                seconds = time.perf_counter() - started
                print(
                    f"  {bench.name} / {ivar}: {summary.points_upserted} chunks in {seconds:.1f}s "
                    f"({summary.chunks_embedded} embedded)",
                    file=sys.stderr,
                )
                raw = fetch_raw(engine, queries)
                for name in variants:
                    label = name if ivar == SHIPPED else f"[{ivar}] {name}"
                    ranked, ms = VARIANTS[name](engine, raw)
                    row = rows.setdefault(label, Row(label))
                    row.scores[bench.name] = Scores.of(queries, ranked, ms)
                    row.index_seconds[bench.name] = seconds
        engine.parts.models.__dict__.pop("sparse", None)


def _mean(row: Row, corpora: Sequence[str], attr: str) -> float:
    vals = [getattr(row.scores[c], attr) for c in corpora if c in row.scores]
    return statistics.fmean(vals) if vals else math.nan


def _language_of(corpus: str) -> str:
    found = BY_NAME.get(corpus)
    return found.language if found else "python"


def by_language(rows: list[Row], corpora: list[str]) -> str:
    """Per language: mean MRR@10, R@1, R@10 over its corpora; and the mean of the languages."""
    langs = [lang for lang in LANGUAGES if any(_language_of(c) == lang for c in corpora)]
    width = max(len(r.name) for r in rows)
    head = f"{'variant':<{width}}  " + "  ".join(f"{lang[:10]:>16}" for lang in langs)
    head += f"  {'mean of languages':>18}"
    lines = [
        "Per language: MRR@10 / R@1 / R@10 (means over the language's corpora)",
        head,
        "-" * len(head),
    ]
    for row in rows:
        cells, means = [], []
        for lang in langs:
            mine = [c for c in corpora if _language_of(c) == lang and c in row.scores]
            if not mine:
                cells.append(f"{'':>16}")
                continue
            mrr, r1, r10 = (_mean(row, mine, a) for a in ("mrr", "r1", "r10"))
            means.append((mrr, r1, r10))
            cells.append(f"{mrr:.3f}/{r1:.2f}/{r10:.2f}".rjust(16))
        overall = (
            "/".join(f"{statistics.fmean(m[i] for m in means):.3f}" for i in range(3))
            if means
            else ""
        )
        lines.append(f"{row.name:<{width}}  " + "  ".join(cells) + f"  {overall:>18}")
    return "\n".join(lines)


def report(rows: list[Row], corpora: list[str], base: Row) -> str:
    dev = [c for c in corpora if c not in PUBLIC]
    width = max(len(r.name) for r in rows)
    head = f"{'variant':<{width}}  " + "  ".join(f"{c[:8]:>8}" for c in corpora)
    head += f"  {'mean':>6}  {'dev':>6}  {'ratio':>6}  {'R@1':>5}  {'R@5':>5}  {'R@10':>5}  {'ms/q':>5}  {'index s':>7}"
    lines = [
        "MRR@10 per corpus; mean over all; dev = mean over the non-public corpora;",
        f"ratio = mean / mean of {base.name!r}; R@k are means over all corpora;",
        "ms/q = batched query time of the real Searcher; index s = rebuild time summed over corpora.",
        head,
        "-" * len(head),
    ]
    base_mean = _mean(base, corpora, "mrr")
    for row in rows:
        mean = _mean(row, corpora, "mrr")
        cells = "  ".join(
            f"{row.scores[c].mrr:8.3f}" if c in row.scores else f"{'':>8}" for c in corpora
        )
        times = [s.ms for s in row.scores.values() if s.ms is not None]
        ms = f"{statistics.fmean(times):5.1f}" if times else f"{'':>5}"
        lines.append(
            f"{row.name:<{width}}  {cells}  {mean:6.3f}  {_mean(row, dev, 'mrr'):6.3f}  "
            f"{mean / base_mean:6.3f}  {_mean(row, corpora, 'r1'):5.3f}  {_mean(row, corpora, 'r5'):5.3f}  "
            f"{_mean(row, corpora, 'r10'):5.3f}  {ms}  {sum(row.index_seconds.values()):7.1f}"
        )
    return "\n".join(lines)


def latency(benches: list[Path], copies: int, n_queries: int = 100) -> str:
    """Single-query latency, in process, on `copies` copies of every corpus in one index."""
    texts = [q.text for b in benches for q in load_queries(b)][::7][:n_queries]
    with temporary_project(benches, copies) as engine:
        started = time.perf_counter()
        summary = engine.sync()
        print(
            f"  indexed {summary.points_upserted} chunks in {time.perf_counter() - started:.0f}s",
            file=sys.stderr,
        )
        searcher = Searcher(engine.parts)
        lines = [f"{summary.points_upserted} chunks, {len(texts)} queries one at a time (ms):"]
        engine.parts.models.embedder.embed(["warm up"])
        for label in ("hybrid", "semantic", "keyword", BASELINE):
            times = []
            for text in texts:
                started = time.perf_counter()
                if label == BASELINE:
                    _old_hybrid(engine, text)
                else:
                    searcher.search(QueryRequest(text=text, limit=LIMIT, mode=label))  # type: ignore[arg-type]
                times.append(1000 * (time.perf_counter() - started))
            times.sort()
            lines.append(
                f"  {label:<26} p50 {times[len(times) // 2]:6.1f}  p95 {times[int(len(times) * 0.95)]:6.1f}"
                f"  mean {statistics.fmean(times):6.1f}"
            )
        return "\n".join(lines)


def _old_hybrid(engine: Engine, text: str) -> list[Hit]:
    """One query as cidx's hybrid mode ran it before: engine RRF over prefetches of 50."""
    vector = engine.parts.models.embedder.embed([text])[0].tolist()
    query = StoreQuery(
        (
            Nearest("dense", vector, 50),
            Nearest("sparse", engine.parts.models.sparse.query(text), 50),
        ),
        LIMIT,
        fusion=Fusion("rrf", rrf_k=60),
    )
    return engine.store.query(engine.collection, query)


def embed_speed(benches: list[Path], rounds: int = 2) -> str:
    """Raw embedding throughput of the earlier models and the bundled one on the corpora's chunk texts.

    Both in this process, on the same texts (every chunk's dense text, as
    the indexer embeds them), at max length 128, alternating so that load
    from elsewhere on the machine falls on both alike; the best round counts.
    """
    from cidx.chunking import chunk_file
    from cidx.embedding import Embedder
    from cidx.embedding._model import bundled_model
    from cidx.representation import dense_text

    texts = []
    for bench in benches:
        root = bench / "corpus"
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            chunked = chunk_file(rel, path.read_text(encoding="utf-8", errors="replace"))
            texts += [dense_text(rel, c) for c in chunked.chunks]
    models = {
        "previous (all-MiniLM-L6-v2 int8)": previous_model(),
        "first code-tuned": first_tuned_model(),
        "second code-tuned": second_tuned_model(),
        "third code-tuned": third_tuned_model(),
        "bundled": bundled_model(),
    }
    embedders = {name: Embedder(128, model=m) for name, m in models.items()}
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, embedder in embedders.items():
            embedder.embed(texts[:32])
            started = time.perf_counter()
            embedder.embed(texts)
            seconds = time.perf_counter() - started
            best[name] = min(best.get(name, seconds), seconds)
    lines = [f"embedding {len(texts)} chunk texts at max length 128 (best of {rounds}):"]
    first = next(iter(best.values()))
    for name, seconds in best.items():
        size = models[name].path.stat().st_size / 1e6
        lines.append(
            f"  {name:<34} {seconds:6.1f} s  {len(texts) / seconds:6.1f} chunks/s"
            f"  x{first / seconds:.2f} the previous model's speed  ({size:.1f} MB)"
        )
    # One query at a time, as an owner embeds them (graph passes on): the
    # model's share of a hybrid query's latency.
    queries = [q.text for b in benches for q in load_queries(b)][:200]
    owners = {name: Embedder(128, model=m, long_lived=True) for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in owners}
    for text in queries:
        for name, embedder in owners.items():
            started = time.perf_counter()
            embedder.embed([text])
            times[name].append(1000 * (time.perf_counter() - started))
    lines.append(f"one query embedded at a time ({len(queries)} queries, owner loading), ms:")
    for name, ms in times.items():
        ms.sort()
        lines.append(
            f"  {name:<34} p50 {ms[len(ms) // 2]:5.2f}  p95 {ms[int(len(ms) * 0.95)]:5.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "corpora", nargs="*", help=f"corpus names or folders (default: all of {', '.join(BY_NAME)})"
    )
    ap.add_argument(
        "--lang", nargs="*", default=None, choices=LANGUAGES, help="only these languages"
    )
    ap.add_argument(
        "--only", nargs="+", default=None, metavar="GLOB", help="query-time variants to run"
    )
    ap.add_argument(
        "--index-variants", nargs="*", default=None, metavar="GLOB",
        help="also rebuild the index per index-time variant (all, or those matching)",
    )  # fmt: skip
    ap.add_argument(
        "--candidate", nargs="+", type=Path, default=[], metavar="ONNX",
        help="also index and query with these exported model files (training runs)",
    )  # fmt: skip
    ap.add_argument(
        "--latency",
        type=int,
        default=None,
        metavar="COPIES",
        help="time single queries on one index of COPIES copies of every corpus",
    )
    ap.add_argument(
        "--embed-speed",
        action="store_true",
        help="embedding speed of every earlier model and the bundled one",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    ap.add_argument("--list", action="store_true", help="list the variants and exit")
    a = ap.parse_args(argv)
    if a.list:
        print("query-time:", *VARIANTS, sep="\n  ")
        print("index-time:", *INDEX_VARIANTS, sep="\n  ")
        return 0
    named = [c for c in a.corpora if "/" not in c]
    benches = [Path(c) for c in a.corpora if "/" in c]
    if named or not benches:
        benches += ensure(named or None, a.lang)
    if a.latency:
        print(latency(benches, a.latency))
        return 0
    if a.embed_speed:
        print(embed_speed(benches))
        return 0
    names = [
        n
        for n in VARIANTS
        if a.only is None or n == BASELINE or any(fnmatch.fnmatch(n, g) for g in a.only)
    ]
    ivars = [SHIPPED]
    if a.index_variants is not None:
        globs = a.index_variants or ["*"]
        ivars += [
            n for n in INDEX_VARIANTS if n != SHIPPED and any(fnmatch.fnmatch(n, g) for g in globs)
        ]
    ivars += add_candidates(a.candidate)
    rows: dict[str, Row] = {}
    for bench in benches:
        print(f"{bench.name}: {len(ivars)} index and {len(names)} query variants", file=sys.stderr)
        run_corpus(bench, names, ivars, rows)
    ordered = list(rows.values())
    # The ratio base is what cidx did before: its engine RRF, on its old index when built.
    base = rows.get(f"[{BEFORE}] {BASELINE}", rows[BASELINE])
    print(report(ordered, [b.name for b in benches], base))
    print()
    print(by_language(ordered, [b.name for b in benches]))
    if a.json:
        a.json.write_text(
            json.dumps(
                {
                    r.name: {
                        c: vars(s) | {"index_seconds": r.index_seconds.get(c)}
                        for c, s in r.scores.items()
                    }
                    for r in ordered
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
