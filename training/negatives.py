"""Hard negatives: for each pair, code from its own package that BM25 finds for its query.

In-batch negatives from one package already share its vocabulary, but a
random 31 of a package's functions rarely hold the sibling a query is
really confused with (`get_u16` and `get_i16_le`, `max_by` and
`max_by_key`). Each pair here gets one such sibling: a random one of the
`TOP` codes of the same package that cidx's own BM25 ranks highest for the
pair's query, never the pair's own code, nor code whose query is the
same text (overloads documented alike are no negatives of each other).

The choice is a function of the pairs and the seed alone, so a run that
resumes trains on the same negatives.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from cidx.sparse import SparseEncoder
from training.mine import code_key

TOP = 3  # the negative is drawn from this many best BM25 matches


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def hard_negatives(pairs: Sequence[dict[str, Any]], seed: int) -> list[int | None]:
    """For pair i, the index of another pair of its package to use as its negative.

    None where the package has nothing to offer (no other code shares a term
    with the query).
    """
    encoder = SparseEncoder()
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
        scores = queries @ matrix.T
        for row, i in enumerate(members):
            picks: list[int] = []
            for col in np.argsort(-scores[row], kind="stable"):
                if scores[row, col] <= 0 or len(picks) == TOP:
                    break
                if doc_keys[col] == keys[row] or questions[row] in asked[doc_keys[col]]:
                    continue
                picks.append(doc_ids[col])
            if picks:
                chosen[i] = rng.choice(picks)
    return chosen
