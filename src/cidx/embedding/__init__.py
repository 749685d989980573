"""The bundled embedding model: all-MiniLM-L6-v2 fine-tuned on code, int8 ONNX, run offline.

The ONNX file ships in this package (`data/`, made by the repository's
`training/` pipeline) and is checked against its sha256 before it runs; so
does the WordPiece vocabulary (`data/vocab.txt`, Apache-2.0, see
`data/NOTICE`). Inference is
`onnxruntime` + `tokenizers`: no torch, no network, nothing downloaded.
`Embedder` (and with it numpy and onnxruntime) is imported only when used,
so commands that embed nothing start faster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cidx.embedding._settings import (
    DEFAULT_MAX_LENGTH,
    EMBEDDING_DIM,
    MODEL_NAME,
    embedding_settings,
    max_length_of,
    model_id,
)

if TYPE_CHECKING:
    from cidx.embedding._model import Embedder

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "EMBEDDING_DIM",
    "MODEL_NAME",
    "Embedder",
    "embedding_settings",
    "max_length_of",
    "model_id",
]


def __getattr__(name: str) -> Any:
    if name == "Embedder":
        from cidx.embedding._model import Embedder

        return Embedder
    raise AttributeError(name)
