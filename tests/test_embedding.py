"""The bundled model: offline, verified, deterministic, and meaningful."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cidx.embedding import EMBEDDING_DIM, Embedder, model_id
from cidx.errors import ModelError


def test_vectors_are_unit_length_and_384_wide(embedder: Embedder) -> None:
    vectors = embedder.embed(["def add(a, b): return a + b", "hello world", ""])
    assert vectors.shape == (3, EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_related_texts_are_closer_than_unrelated(embedder: Embedder) -> None:
    query, code, other = embedder.embed(
        [
            "retry failed uploads",
            "def upload_with_retry(path, attempts=3):\n    for n in range(attempts):\n"
            "        try:\n            return put(path)\n"
            "        except IOError:\n            sleep(2 ** n)",
            "def render_template(name, context):\n"
            "    return env.get_template(name).render(context)",
        ]
    )
    assert float(query @ code) > float(query @ other) + 0.2


def test_order_and_batching_do_not_change_vectors(embedder: Embedder) -> None:
    texts = [f"function number {i} " * (i + 1) for i in range(40)]
    together = embedder.embed(texts, batch_size=16)
    alone = np.stack([embedder.embed_one(t) for t in texts[:5]])
    np.testing.assert_allclose(together[:5], alone, atol=1e-4)
    reversed_ = embedder.embed(texts[::-1], batch_size=7)[::-1]
    np.testing.assert_allclose(together, reversed_, atol=1e-4)


def test_an_owners_optimised_model_gives_the_same_vectors(embedder: Embedder) -> None:
    # Owners load the model with graph passes (faster single queries); the
    # vectors they write and cache must be interchangeable with everyone's.
    texts = ["retry failed uploads", "class Session:\n    def request(self, method, url): ..."]
    owner = Embedder(long_lived=True)
    assert owner.model_id == embedder.model_id
    np.testing.assert_allclose(owner.embed(texts), embedder.embed(texts), atol=2e-4)


def test_long_text_is_truncated_to_max_length(embedder: Embedder) -> None:
    assert max(embedder.token_lengths(["word " * 5000])) == embedder.max_length == 128
    assert embedder.model_id == model_id(128)


def test_a_corrupt_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    monkeypatch.setenv("CIDX_MODEL_PATH", str(bad))
    with pytest.raises(ModelError, match="corrupt or not the one"):
        Embedder()


def test_a_missing_model_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIDX_MODEL_PATH", str(tmp_path / "absent.onnx"))
    with pytest.raises(ModelError, match="Cannot read the embedding model"):
        Embedder()
