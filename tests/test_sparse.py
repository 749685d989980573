"""Code-aware BM25 tokens and vectors."""

from __future__ import annotations

from cidx.sparse import SparseEncoder, code_tokens, identifier_parts


def test_identifiers_are_split_and_kept_whole() -> None:
    assert identifier_parts("parseHTTPResponse_v2") == ["parse", "http", "response", "v", "2"]
    tokens = code_tokens("def retryFailedUpload(max_attempts): pass")
    assert "retryfailedupload" in tokens
    assert {"retry", "failed", "upload"} <= set(tokens)
    assert {"max_attempts", "max", "attempts"} <= set(tokens)


def test_single_word_identifiers_are_not_duplicated() -> None:
    assert code_tokens("upload upload") == ["upload", "upload"]
    assert code_tokens("__init__") == ["init"]


def test_query_words_meet_split_identifiers() -> None:
    enc = SparseEncoder()
    doc = enc.document("def retryFailedUploads(queue): ...")
    query = enc.query("retry failed upload")
    # Stemming makes "uploads" and "upload" one term; every query term is in the doc.
    assert set(query.indices) <= set(doc.indices)
    assert all(v == 1.0 for v in query.values)


def test_stop_words_carry_no_weight() -> None:
    assert SparseEncoder().query("the of and").indices == []
