"""A few training steps end to end: train, resume, export to int8 ONNX, load in cidx.

Needs the `train` extra (torch); run it explicitly:

    pip install -e '.[train]' && python -m pytest training/tests -q

It starts from a one-layer model with random weights (same vocabulary and
width as the real one), so it needs no download and runs in a minute.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")
pytest.importorskip("safetensors", reason="the training extra (safetensors) is not installed")
pytest.importorskip("onnx", reason="the training extra (onnx) is not installed")

from training import export, train  # noqa: E402
from training.bert import BertConfig, BertEncoder  # noqa: E402


def _tiny_base(folder: Path) -> Path:
    from safetensors.torch import save_file

    config = BertConfig(num_hidden_layers=2, intermediate_size=128)
    torch.manual_seed(0)
    model = BertEncoder(config)
    folder.mkdir(parents=True)
    save_file(model.state_dict(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(
        json.dumps(
            {
                "vocab_size": config.vocab_size,
                "hidden_size": config.hidden_size,
                "num_hidden_layers": config.num_hidden_layers,
                "num_attention_heads": config.num_attention_heads,
                "intermediate_size": config.intermediate_size,
                "max_position_embeddings": config.max_position_embeddings,
                "type_vocab_size": config.type_vocab_size,
                "layer_norm_eps": config.layer_norm_eps,
            }
        )
    )
    return folder


def _pairs(folder: Path) -> Path:
    rng = random.Random(1)
    verbs = ["parse", "send", "retry", "render", "open", "close", "merge", "split"]
    nouns = ["upload", "token", "schema", "request", "file", "socket", "config", "route"]
    folder.mkdir(parents=True)
    for split, count in (("train", 48), ("val", 12)):
        with open(folder / f"{split}.jsonl", "w") as fh:
            for i in range(count):
                verb, noun = rng.choice(verbs), rng.choice(nouns)
                lang = "python" if i % 2 else "go"
                code = f"function {verb}_{noun}_{i}\ndef {verb}_{noun}_{i}(x):\n    return {noun}.{verb}(x, {i})"
                fh.write(json.dumps({"query": f"{verb} the {noun} number {i}", "code": code,
                                     "language": lang, "package": f"p{i % 3}", "source": "doc",
                                     "path": "a.py", "symbol": f"{verb}_{noun}_{i}"}) + "\n")  # fmt: skip
    return folder


def test_train_resume_export_and_load(tmp_path: Path) -> None:
    base = _tiny_base(tmp_path / "base")
    pairs = _pairs(tmp_path / "pairs")
    out = tmp_path / "run"
    args = ["--base", str(base), "--pairs", str(pairs), "--out", str(out), "--batch", "4",
            "--freeze-layers", "1", "--save-every", "1", "--eval-every", "2", "--warmup", "1"]  # fmt: skip
    assert train.main([*args, "--steps", "3"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 1, 2, 3]
    assert all(r["loss"] > 0 for r in log[1:]) and "val_mrr" in log[2]
    first_run = json.loads((out / "run.json").read_text())
    assert first_run["steps"] == 3 and first_run["hardware"]["cpus"]

    # Same command with more steps: continues from the checkpoint, not from scratch.
    assert train.main([*args, "--steps", "5"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 1, 2, 3, 4, 5]

    # A second stage from those weights, with hard negatives and another batch order.
    hard = tmp_path / "hard"
    stage = ["--base", str(base), "--pairs", str(pairs), "--out", str(hard), "--batch", "4",
             "--init", str(out / "final.pt"), "--hard-negatives", "--seed", "7", "--steps", "2",
             "--warmup", "1", "--eval-every", "2"]  # fmt: skip
    assert train.main(stage) == 0
    second = json.loads((hard / "run.json").read_text())
    assert second["hard_negatives"] and second["seed"] == 7 and second["init"]
    before = torch.load(out / "final.pt", weights_only=False)
    after = torch.load(hard / "final.pt", weights_only=False)
    assert any(not torch.equal(before[k], after[k]) for k in before)

    onnx_file = tmp_path / "model.onnx"
    digest = export.export(base, out / "final.pt", onnx_file)
    from cidx.embedding import Embedder
    from cidx.embedding._model import ModelFile

    embedder = Embedder(model=ModelFile("smoke", onnx_file, digest))
    vectors = embedder.embed(["parse the schema", "def parse_schema(x): ..."])
    assert vectors.shape == (2, 384)
    assert embedder.model_id == "smoke@128"

    # Negatives mined by that export, and a stage that trains on them.
    from training import negatives

    mined = tmp_path / "negatives.json"
    assert negatives.main(["--pairs", str(pairs), "--model", str(onnx_file), "--seed", "7",
                           "--out", str(mined)]) == 0  # fmt: skip
    chosen = json.loads(mined.read_text())["negatives"]
    train_pairs = train.load_pairs(pairs / "train.jsonl")
    assert len(chosen) == len(train_pairs) and any(c is not None for c in chosen)
    by_model = tmp_path / "by-model"
    third = [*stage[:5], str(by_model), *stage[6:]]
    third[third.index("--hard-negatives")] = "--negatives"
    third.insert(third.index("--negatives") + 1, str(mined))
    assert train.main(third) == 0
    assert json.loads((by_model / "run.json").read_text())["negatives"] == str(mined)
