"""How a chunk is presented to the dense model, to BM25, and in the payload.

Kept in one place because these choices decide search quality (see
benchmarks/RESULTS.md for what was measured) and because changing any of
them changes stored vectors: bump `REPRESENTATION_VERSION` when they do.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from cidx.chunking import Chunk

REPRESENTATION_VERSION = 2

# Fixed namespace: point ids are uuid5(namespace, path, chunk hash, occurrence),
# identical for every rebuild of the same files.
_POINT_NAMESPACE = uuid.UUID("6f1c1d3e-2b8a-4a53-9a51-3c1a8f0e7d21")


def chunk_hash(chunk: Chunk) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in (chunk.kind, chunk.symbol, chunk.text):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def point_id(path: str, chunk_hash_hex: str, occurrence: int) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{path}\0{chunk_hash_hex}\0{occurrence}"))


def _path_words(path: str) -> str:
    return path.replace("/", " ").replace(".", " ")


def dense_text(path: str, chunk: Chunk) -> str:
    """The text the embedding model sees: "method Session.send" above the code.

    The path is left out so a moved or renamed file reuses every cached
    vector (path words in the dense text did not rank better either). The
    kind and qualified symbol go first because the model only reads the
    first `max_length` tokens, and the kind word ranked definitions better
    than the bare symbol.
    """
    del path
    if chunk.symbol:
        return f"{chunk.kind} {chunk.symbol}\n{chunk.text}"
    return chunk.text


def dense_text_of(payload: dict[str, Any]) -> str:
    """`dense_text` again from a stored point's payload (to embed it for another model)."""
    symbol = str(payload.get("symbol") or "")
    text = str(payload.get("text") or "")
    return f"{payload.get('kind', '')} {symbol}\n{text}" if symbol else text


def sparse_text(path: str, chunk: Chunk) -> str:
    """The text BM25 indexes: path words, the symbol twice, and the whole chunk.

    The symbol counts twice so a chunk that defines a name outranks chunks
    that only use it.
    """
    return f"{_path_words(path)}\n{chunk.symbol}\n{chunk.symbol}\n{chunk.text}"


def text_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def payload(
    path: str, language: str, chunk: Chunk, chunk_hash_hex: str, file_hash: str
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "path": path,
        "language": language,
        "kind": chunk.kind,
        "symbol": chunk.symbol,
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
        "chunk_hash": chunk_hash_hex,
        "file_hash": file_hash,
        "text": chunk.text,
    }
    for key, value in sorted(chunk.meta.items()):
        data.setdefault(key, value)
    return data
