"""Which model vectors come from, without loading it (or numpy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cidx.config import EmbeddingSettings

# all-MiniLM-L6-v2 fine-tuned on code by `training/` (see its README), int8.
MODEL_NAME = "cidx-code4-minilm-l6-int8"
EMBEDDING_DIM = 384
# Measured on the public benchmark (benchmarks/RESULTS.md): 128 tokens ranks
# code better than 256 or 512, and embeds 1.5x faster than 256, 2x than 512.
DEFAULT_MAX_LENGTH = 128


def model_id(max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """The id stored with vectors: a different max length gives other vectors."""
    return f"{MODEL_NAME}@{max_length}"


def max_length_of(model: str, name: str = MODEL_NAME) -> int | None:
    """The max length of the model id `model` of the model called `name` (the
    bundled one unless told), or None when `model` is another model's."""
    named, _, length = model.partition("@")
    if named != name or not length.isdigit() or not 16 <= int(length) <= 512:
        return None
    return int(length)


def embedding_settings(max_length: int = DEFAULT_MAX_LENGTH) -> EmbeddingSettings:
    from cidx.config import EmbeddingSettings

    return EmbeddingSettings(
        model_id=model_id(max_length), dim=EMBEDDING_DIM, max_length=max_length
    )
