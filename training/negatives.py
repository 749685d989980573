"""Hard negatives: for each pair, code from its own package that a ranker finds for its query.

In-batch negatives from one package already share its vocabulary, but a
random 31 of a package's functions rarely hold the sibling a query is
really confused with (`get_u16` and `get_i16_le`, `max_by` and
`max_by_key`). Each pair here gets one such sibling: a random one of the
`TOP` codes of the same package that a ranker puts highest for the pair's
query, never the pair's own code, nor code whose query is the same text
(overloads documented alike are no negatives of each other).

The ranker: cidx's own BM25 (`hard_negatives`), or an embedding model,
alone or inside cidx's hybrid formula (`model_negatives`, from vectors of
every query and code; `python -m training.negatives` computes them with
an exported model and writes the choice to a file `train.py --negatives`
reads). The model's candidates also skip code whose vector is all but the
positive's own (a copy in another file that differs in a comment or a type).

The choice is a function of the pairs, the vectors and the seed alone, so a
run that resumes trains on the same negatives.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cidx.search import DEFAULT_RANKING, defined_name
from cidx.sparse import SparseEncoder
from training.mine import code_key

TOP = 3  # the negative is drawn from this many best matches
SAME_CODE = 0.97  # model candidates this close to the positive's code are copies of it

# Scores of a package's queries (rows, in member order) against its distinct
# codes (columns), given the member indices and the first member of each code.
Scorer = Callable[[list[int], list[int]], np.ndarray]


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _choose(
    pairs: Sequence[dict[str, Any]],
    seed: int,
    scorer: Scorer,
    copies: Scorer | None = None,
) -> list[int | None]:
    """Per pair, one of the `TOP` best-scoring other codes of its package (None: none scores)."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        groups[(pair["language"], pair["package"])].append(i)
    rng = random.Random(seed)
    chosen: list[int | None] = [None] * len(pairs)
    for group in sorted(groups):
        members = groups[group]
        # One document per distinct code (a code's doc and name pairs share it).
        keys = [code_key(pairs[i]["code"]) for i in members]
        questions = [_normal(pairs[i]["query"]) for i in members]
        codes: dict[str, int] = {}
        asked: dict[str, set[str]] = defaultdict(set)  # every query of each code
        for i, key, question in zip(members, keys, questions, strict=True):
            codes.setdefault(key, i)
            asked[key].add(question)
        doc_ids = list(codes.values())
        doc_keys = list(codes)
        if len(doc_ids) < 2:
            continue
        scores = scorer(members, doc_ids)
        near = copies(members, doc_ids) if copies is not None else None
        for row, i in enumerate(members):
            picks: list[int] = []
            for col in np.argsort(-scores[row], kind="stable"):
                if scores[row, col] <= 0 or len(picks) == TOP:
                    break
                if doc_keys[col] == keys[row] or questions[row] in asked[doc_keys[col]]:
                    continue
                if near is not None and near[row, col]:
                    continue
                picks.append(doc_ids[col])
            if picks:
                chosen[i] = rng.choice(picks)
    return chosen


def _bm25(pairs: Sequence[dict[str, Any]], encoder: SparseEncoder) -> Scorer:
    """cidx's BM25 scores of a package's queries against its codes."""

    def bm25(members: list[int], doc_ids: list[int]) -> np.ndarray:
        terms: dict[int, int] = {}
        docs = [encoder.document(pairs[i]["code"]) for i in doc_ids]
        for vec in docs:
            for t in vec.indices:
                terms.setdefault(t, len(terms))
        matrix = np.zeros((len(docs), len(terms)), dtype=np.float32)
        for row, vec in enumerate(docs):
            for t, v in zip(vec.indices, vec.values, strict=True):
                matrix[row, terms[t]] += v
        queries = np.zeros((len(members), len(terms)), dtype=np.float32)
        for row, i in enumerate(members):
            for t in encoder.query(pairs[i]["query"]).indices:
                if t in terms:
                    queries[row, terms[t]] = 1.0
        scores: np.ndarray = queries @ matrix.T
        return scores

    return bm25


def hard_negatives(pairs: Sequence[dict[str, Any]], seed: int) -> list[int | None]:
    """For pair i, the index of another pair of its package BM25 ranks high for its query.

    None where the package has nothing to offer (no other code shares a term
    with the query).
    """
    return _choose(pairs, seed, _bm25(pairs, SparseEncoder()))


def model_negatives(
    pairs: Sequence[dict[str, Any]],
    seed: int,
    queries: np.ndarray,
    codes: np.ndarray,
    *,
    hybrid: bool = False,
) -> list[int | None]:
    """For pair i, another pair of its package whose code the model ranks high for its query.

    `queries[i]` and `codes[i]` are pair i's unit vectors. Code the model
    cannot tell from the pair's own (cosine ≥ `SAME_CODE`) is skipped.
    `hybrid`: rank as cidx's hybrid search does (the model's similarity,
    BM25 and the name match, with the shipped weights), so the negatives are
    the mistakes the search makes, not the model alone.
    """
    encoder = SparseEncoder()
    bm25 = _bm25(pairs, encoder)

    def rank(members: list[int], doc_ids: list[int]) -> np.ndarray:
        scores: np.ndarray = queries[members] @ codes[doc_ids].T
        if hybrid:
            keyword = bm25(members, doc_ids)
            keyword /= np.maximum(keyword.max(axis=1, keepdims=True), 1e-9)
            weights = DEFAULT_RANKING
            scores = weights.dense * np.maximum(scores, 0.0) + weights.keyword * keyword
            scores += weights.name * name_match(members, doc_ids)
        # Shifted so every candidate scores above 0 (cosine can be negative).
        return scores + 2.0

    def name_match(members: list[int], doc_ids: list[int]) -> np.ndarray:
        """cidx.search.name_match (F1 of query and defined-name terms), as a matrix."""
        asked = [frozenset(encoder.query(pairs[i]["query"]).indices) for i in members]
        names = [encoder.name_terms(defined_name(str(pairs[i].get("symbol") or "")))
                 for i in doc_ids]  # fmt: skip
        terms = {t: n for n, t in enumerate(set().union(*asked, *names))}
        q = np.zeros((len(members), len(terms)), dtype=np.float32)
        d = np.zeros((len(doc_ids), len(terms)), dtype=np.float32)
        for matrix, sets in ((q, asked), (d, names)):
            for row, found in enumerate(sets):
                matrix[row, [terms[t] for t in found]] = 1.0
        shared = q @ d.T
        sizes = q.sum(axis=1)[:, None] + d.sum(axis=1)[None, :]
        f1: np.ndarray = np.where(sizes > 0, 2 * shared / np.maximum(sizes, 1.0), 0.0)
        return f1

    def copies(members: list[int], doc_ids: list[int]) -> np.ndarray:
        near: np.ndarray = codes[members] @ codes[doc_ids].T >= SAME_CODE
        return near

    return _choose(pairs, seed, rank, copies)


def _vectors(
    pairs: list[dict[str, Any]], pairs_digest: str, model_path: Path, cache: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of every pair's query and code, by the exported model at `model_path`.

    Kept in `cache/vectors-<model sha256>-<pairs file sha256>.npz`:
    embedding 70,000 pairs takes a quarter of an hour on two cores.
    """
    from cidx.embedding._model import Embedder, ModelFile

    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    kept = cache / f"vectors-{digest[:12]}-{pairs_digest[:12]}.npz"
    if kept.exists():
        with np.load(kept) as found:
            return found["queries"], found["codes"]
    embedder = Embedder(model=ModelFile(f"mining-{digest[:12]}", model_path, digest),
                        long_lived=True)  # fmt: skip
    keys = [code_key(pair["code"]) for pair in pairs]
    firsts: dict[str, int] = {}
    for i, key in enumerate(keys):
        firsts.setdefault(key, i)
    distinct = list(firsts.values())
    print(f"embedding {len(pairs)} queries and {len(distinct)} distinct codes", file=sys.stderr)
    query_vectors = embedder.embed([p["query"] for p in pairs], batch_size=64)
    code_vectors = embedder.embed([pairs[i]["code"] for i in distinct], batch_size=32)
    row = {key: n for n, key in enumerate(firsts)}
    codes = code_vectors[[row[key] for key in keys]]
    tmp = kept.with_suffix(".tmp.npz")
    np.savez(tmp, queries=query_vectors, codes=codes)
    tmp.replace(kept)
    return query_vectors, codes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Hard negatives mined by an exported model, for train.py --negatives."
    )
    ap.add_argument("--pairs", type=Path, required=True, help="folder with train.jsonl")
    ap.add_argument("--model", type=Path, required=True, help="the exported int8 ONNX model")
    ap.add_argument("--seed", type=int, required=True, help="the training run's seed")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument(
        "--ranker",
        choices=("model", "hybrid"),
        default="model",
        help="rank by the model's similarity alone, or as cidx's hybrid search does",
    )
    a = ap.parse_args(argv)
    data = (a.pairs / "train.jsonl").read_bytes()
    pairs = [json.loads(line) for line in data.splitlines()]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    queries, codes = _vectors(pairs, hashlib.sha256(data).hexdigest(), a.model, a.out.parent)
    chosen = model_negatives(pairs, a.seed, queries, codes, hybrid=a.ranker == "hybrid")
    a.out.write_text(json.dumps({"model": str(a.model), "seed": a.seed, "ranker": a.ranker,
                                 "negatives": chosen}))  # fmt: skip
    found = sum(c is not None for c in chosen)
    print(f"{found} of {len(chosen)} pairs have a negative; written to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
