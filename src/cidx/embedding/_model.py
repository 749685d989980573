"""Loading the ONNX model and turning texts into unit-length vectors.

The bundled model is cidx's own: all-MiniLM-L6-v2 fine-tuned on code
(`training/` in the repository makes it) and exported to int8 ONNX, shipped
in `data/` with its sha256 pinned here. `ModelFile` names any other file
with the same interface (the benchmark compares against the previous one).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cidx.cpucap import CpuCap
from cidx.embedding._settings import DEFAULT_MAX_LENGTH, EMBEDDING_DIM, MODEL_NAME, model_id
from cidx.errors import ModelError

# Pinned here, not read from the package, so a swapped file is caught.
MODEL_FILE = "data/cidx-code4-minilm-l6-int8.onnx"
MODEL_SHA256 = "86c85c3e3a9804e386495bb743c4ed725d2caa7a282d15b6bf7c15c914f3ee5f"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
# Small batches of length-sorted texts beat large ones on a few CPU cores:
# less padding, and the activations stay in cache.
DEFAULT_BATCH_SIZE = 16

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ModelFile:
    """An ONNX embedding model: BERT-style inputs, last hidden state out."""

    name: str  # part of the model id stored with every vector
    path: Path
    sha256: str


def bundled_model() -> ModelFile:
    """The model shipped in this package (`CIDX_MODEL_PATH` overrides the file, not the hash)."""
    override = os.environ.get("CIDX_MODEL_PATH")
    if override:
        path = Path(override)
    else:
        with resources.as_file(resources.files("cidx.embedding").joinpath(MODEL_FILE)) as found:
            path = found
    return ModelFile(MODEL_NAME, path, MODEL_SHA256)


def _verified_bytes(path: Path, sha256: str, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(
            f"Cannot read the {what} at {path}: {exc.strerror}. Reinstall cidx."
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelError(
            f"The {what} at {path} is corrupt or not the one cidx was built for "
            f"(sha256 {digest[:16]}…, expected {sha256[:16]}…). Reinstall cidx."
        )
    return data


class Turns:
    """Queries before bulk work: a bulk embedding (a sync) waits, between its
    batches, while any query embedding is in flight, so a query never waits
    behind a whole sync — at most behind the one batch already running."""

    def __init__(self) -> None:
        self._queries = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def query(self) -> Iterator[None]:
        with self._cond:
            self._queries += 1
        try:
            yield
        finally:
            with self._cond:
                self._queries -= 1
                if not self._queries:
                    self._cond.notify_all()

    def between_batches(self) -> None:
        with self._cond:
            while self._queries:
                self._cond.wait()


class Embedder:
    """A BERT-style ONNX model with mean pooling and L2 normalisation.

    Thread-safe: onnxruntime sessions may run concurrently, and the tokenizer
    is only used under a lock (its padding/truncation state is shared).
    Queries (`query=True`) go first: see `Turns`.
    """

    def __init__(
        self,
        max_length: int = DEFAULT_MAX_LENGTH,
        *,
        threads: int | None = None,
        long_lived: bool = False,
        model: ModelFile | None = None,
        cap: CpuCap | None = None,
    ) -> None:
        """`long_lived`: this process will embed many queries (an owner), so
        spend load time to make each single query faster. `model`: another
        model file than the bundled one. `cap`: paces bulk work between
        batches (the daemon's background syncs)."""
        import onnxruntime as ort
        from tokenizers import BertWordPieceTokenizer

        model = model or bundled_model()
        self.max_length = max_length
        self.model_id = (
            f"{model.name}@{max_length}" if model.name != MODEL_NAME else model_id(max_length)
        )
        self.dim = EMBEDDING_DIM
        model_bytes = _verified_bytes(model.path, model.sha256, "embedding model")
        vocab = resources.files("cidx.embedding").joinpath("data/vocab.txt")
        with resources.as_file(vocab) as vocab_path:
            _verified_bytes(vocab_path, VOCAB_SHA256, "tokenizer vocabulary")
            self._tokenizer = BertWordPieceTokenizer(str(vocab_path), lowercase=True)
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.no_padding()
        self._tok_lock = threading.Lock()
        self.turns = Turns()
        self.cap = cap

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # Measured here: the basic graph passes make a one-line query 4x
        # faster (3.9 ms instead of 16) but loading takes 150 ms instead of
        # 30; batches run at the same speed either way, and the extended
        # passes add nothing but load time. So only a process that answers
        # many queries (an owner) pays for them; a one-shot command does not.
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            if long_lived
            else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        if long_lived:
            # The model stores int8 weights dequantized in the graph: left so,
            # every run dequantizes every weight again, 25 ms for a one-line
            # query. Folded once at load into fp32 weights, a query takes
            # 2.5 ms and a batch 7 % less, for ~100 MB more memory and
            # 150 ms more loading, both paid once by an owner.
            options.add_session_config_entry("session.disable_quant_qdq", "1")
        # No spinning between runs: an idle owner process must cost ~0 CPU.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"onnxruntime could not load the embedding model: {exc}") from exc
        self._input_names = {i.name for i in self._session.get_inputs()}

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        with self._tok_lock:
            return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts))]

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_batch: Callable[[int], None] | None = None,
        query: bool = False,
    ) -> Vectors:
        """Vectors for `texts`, in order; `on_batch(n)` after every n texts done.
        `query`: someone waits for these (a search), bulk work yields to them."""
        if query:
            with self.turns.query():
                return self._embed(texts, batch_size, on_batch, bulk=False)
        return self._embed(texts, batch_size, on_batch, bulk=True)

    def _embed(
        self,
        texts: Sequence[str],
        batch_size: int,
        on_batch: Callable[[int], None] | None,
        *,
        bulk: bool,
    ) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        with self._tok_lock:
            encodings = self._tokenizer.encode_batch(list(texts))
        ids_list = [e.ids for e in encodings]
        # Sorting by length keeps padding (wasted compute) near zero.
        order = sorted(range(len(texts)), key=lambda i: len(ids_list[i]))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if bulk:
                if self.cap is not None:
                    self.cap.pace()
                self.turns.between_batches()
            out[batch] = self._run([ids_list[i] for i in batch])
            if on_batch is not None:
                on_batch(len(batch))
        return out

    def embed_one(self, text: str) -> Vectors:
        vector: Vectors = self.embed([text])[0]
        return vector

    def _run(self, ids_batch: list[list[int]]) -> Vectors:
        width = max(len(ids) for ids in ids_batch)
        input_ids = np.zeros((len(ids_batch), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for row, ids in enumerate(ids_batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        feeds: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Vectors = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result
