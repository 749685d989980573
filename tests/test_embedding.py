"""The bundled model: offline, verified, deterministic, and meaningful."""

from __future__ import annotations

import os
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


def test_the_bundled_model_file_matches_its_pinned_checksum() -> None:
    import hashlib

    from cidx.embedding._model import MODEL_SHA256, bundled_model

    model = bundled_model()
    assert model.path.is_file()
    assert model.path.parent.name == "data" and model.path.parent.parent.name == "embedding"
    assert hashlib.sha256(model.path.read_bytes()).hexdigest() == MODEL_SHA256


def test_the_model_loads_and_embeds_with_no_network(tmp_path: Path) -> None:
    # A fresh process in which opening any socket fails: loading and
    # embedding must not try (no hub, no download, no telemetry).
    import subprocess
    import sys

    script = tmp_path / "offline.py"
    script.write_text(
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from cidx.embedding import Embedder\n"
        "v = Embedder().embed(['retry failed uploads'])\n"
        "print(v.shape, float(abs(v).sum()) > 0)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "0", "NO_PROXY": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 384) True"


def test_vectors_are_identical_across_processes(embedder: Embedder, tmp_path: Path) -> None:
    import subprocess
    import sys

    texts = ["def add(a, b):\n    return a + b", "parse a json schema", ""]
    out = tmp_path / "v.npy"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, numpy as np\n"
            "from cidx.embedding import Embedder\n"
            f"np.save(sys.argv[1], Embedder().embed({texts!r}))",
            str(out),
        ],
        check=True,
        timeout=300,
    )
    again = np.load(out)
    assert again.tobytes() == embedder.embed(texts).tobytes()


def test_bulk_embedding_waits_between_batches_while_a_query_embeds(embedder: Embedder) -> None:
    import threading

    done: list[int] = []
    texts = [f"def handler_{i}(request): return {i}" for i in range(48)]
    bulk = threading.Thread(
        target=lambda: embedder.embed(texts, batch_size=16, on_batch=done.append), daemon=True
    )
    with embedder.turns.query():
        bulk.start()
        # Held off for as long as the query is in flight: not one batch runs.
        bulk.join(timeout=1.0)
        assert bulk.is_alive() and done == []
        query = embedder.embed(["handler request"], query=True)
    bulk.join(timeout=60)
    assert not bulk.is_alive() and sum(done) == 48
    assert query.shape == (1, 384)


def test_models_of_another_model_file_make_its_vectors_only(tmp_path: Path) -> None:
    """`Models.variant` names the models that make a model id's vectors: a
    Models holding another model file (as benchmarks load earlier models)
    makes that file's vectors, at any max length, and never the bundled
    model's."""
    from cidx.embedding._model import ModelFile, bundled_model
    from cidx.parts import Models

    bundled = bundled_model()
    other = ModelFile("other-model", bundled.path, bundled.sha256)
    models = Models(128, model=other)
    assert models.variant("other-model@128") is models
    longer = models.variant("other-model@256")
    assert longer is not None and longer.max_length == 256 and longer.model is other
    assert models.variant(model_id(128)) is None
    assert models.variant("other-model@abc") is None

    plain = Models(128)
    assert plain.variant(model_id(128)) is plain
    assert plain.variant("other-model@128") is None
