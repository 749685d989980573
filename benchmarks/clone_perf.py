"""`cidx clone` as the index grows: copy-on-write against a plain copy, and fix-config.

    sudo python benchmarks/clone_perf.py [--sizes 10000 50000 100000] [--runs 3]

Needs root: it makes and loop-mounts two filesystem images in a scratch
folder (`--work`, default a temporary folder), an XFS image with reflink=1
for the project and its clones, and an ext4 image as the target of the
plain copy (another filesystem: `cidx clone` can only copy the blocks).

The fixture is one real project grown to each size and indexed by the real
`cidx index`. Embedding 100k chunks would take half an hour on a small
machine, so the files repeat the chunk texts of 100 generated modules (a
thousand distinct functions): the indexer embeds each distinct text once
and takes every repeat from its embedding cache (the dense text carries no
path), while chunking, BM25, the manifest and the store see every chunk —
the index is the same size and shape as one of distinct chunks.

For each size it prints:

  index           the index folder's size and what `cidx index` took to grow it
  clone (reflink) `cidx clone` on the XFS image: wall time of the whole
                  command (process start included; median of --runs) and the
                  time inside it (pause + copy + fix-config)
  copy inside     the copy alone, and fix-config's part (a quick check:
                  manifest counts and the shard in place)
  clone (plain)   `cidx clone` from the XFS image to the ext4 image (one run)
  fix-config      `cidx fix-config` in a copy made by `cp -a --reflink`, with
                  the full verification (opens the store, counts, a query)
  index alone     `copy_tree` of the index folder only (no source files),
                  reflink on XFS and plain to ext4: what the index's size costs
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODULES = 100
FUNCTIONS = 10
WORDS = (
    "upload retry queue socket parse token cache render schema index buffer stream digest "
    "commit branch merge packet route ledger invoice tile shard vector cursor batch"
).split()


def module(seed: int) -> str:
    rnd = random.Random(seed)
    lines = [f'"""Generated module {seed}."""', "", "import os", ""]
    for f in range(FUNCTIONS):
        name = "_".join(rnd.sample(WORDS, 3)) + f"_{seed}_{f}"
        a, b = rnd.sample(WORDS, 2)
        lines += [
            "",
            f"def {name}({a}, {b}=None):",
            f'    """{" ".join(rnd.sample(WORDS, 6))}."""',
            f"    if {b} is None:",
            f"        {b} = os.environ.get({name.upper()!r}, {seed * 31 + f})",
            f"    return [{a}, {b}, {rnd.randint(0, 10**6)}]",
        ]
    return "\n".join(lines) + "\n"


CPU: list[float] = [0.0]  # CPU seconds (user + system) of the last command


def cidx(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, Any]:
    """Run the CLI; (wall seconds, its JSON answer or None). Its CPU time goes to CPU[0]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "cidx", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[0] = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if proc.returncode != 0:
        raise SystemExit(f"cidx {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    out = proc.stdout.strip()
    return wall, json.loads(out) if out.startswith("{") else None


def mount(kind: str, image: Path, where: Path, size_gb: int) -> None:
    with open(image, "wb") as fh:
        fh.truncate(size_gb * 1024**3)
    mkfs = {"xfs": ["mkfs.xfs", "-q", "-m", "reflink=1"], "ext4": ["mkfs.ext4", "-q", "-F"]}[kind]
    subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
    where.mkdir(parents=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(where)], check=True)


def du(path: Path) -> int:
    """Bytes allocated on disk (the store's preallocated files are sparse)."""
    out = subprocess.run(["du", "-sB1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def copy_index(proj: Path, target: Path) -> float:
    """Seconds `copy_tree` takes for the index folder alone (then removed)."""
    from cidx.treecopy import copy_tree

    started = time.perf_counter()
    copy_tree(proj / ".code-indexer", target)
    took = time.perf_counter() - started
    shutil.rmtree(target)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: it loop-mounts filesystem images")
    work = Path(tempfile.mkdtemp(prefix="cidx-clone-bench-", dir=args.work))
    env = {**os.environ, "HOME": str(work / "home")}
    (work / "home").mkdir()
    xfs, ext4 = work / "xfs", work / "ext4"
    mount("xfs", work / "xfs.img", xfs, 8)
    mount("ext4", work / "ext4.img", ext4, 6)
    rows: list[dict[str, Any]] = []
    try:
        proj = xfs / "proj"
        texts = [module(i) for i in range(MODULES)]
        files = 0

        def add(n: int) -> None:
            nonlocal files
            for i in range(files, files + n):
                path = proj / f"pkg{i // 500:03d}" / f"m{i:05d}.py"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(texts[i % MODULES], encoding="utf-8")
            files += n

        versions = [cidx(["--version"], work, env)[0] for _ in range(args.runs)]
        version_cpu = CPU[0]
        print(
            f"`cidx --version` (process start, the floor of any command): wall "
            f"{statistics.median(versions):.2f} s, CPU {version_cpu:.2f} s"
        )
        add(MODULES)
        cidx(["init"], proj, env)
        took, _ = cidx(["index"], proj, env)
        _, status = cidx(["status", "--json"], proj, env)
        per_file = status["chunks"] / files
        print(f"{per_file:.1f} chunks per file; first {MODULES} files indexed in {took:.1f} s")
        for size in args.sizes:
            grow = 0.0
            while status["chunks"] < size:
                add(max(1, int((size - status["chunks"]) / per_file + 0.999)))
                t, _ = cidx(["index"], proj, env)
                grow += t
                _, status = cidx(["status", "--json"], proj, env)
            index_bytes = du(proj / ".code-indexer")
            walls, cpus, inside, copies, fixes, method = [], [], [], [], [], ""
            for run in range(args.runs):
                target = xfs / f"clone-{size}-{run}"
                wall, result = cidx(["clone", str(proj), str(target), "--json"], xfs, env)
                walls.append(wall)
                cpus.append(CPU[0])
                inside.append(result["seconds"])
                copies.append(result["copy_seconds"])
                fixes.append(result["fix"]["seconds"])
                method = result["method"]
                shutil.rmtree(target)
            index_cow = copy_index(proj, xfs / f"index-{size}")
            index_plain = copy_index(proj, ext4 / f"index-{size}")
            plain_target = ext4 / f"clone-{size}"
            plain_wall, plain = cidx(["clone", str(proj), str(plain_target), "--json"], xfs, env)
            plain_cpu = CPU[0]
            shutil.rmtree(plain_target)
            manual = xfs / f"manual-{size}"
            subprocess.run(["cp", "-a", "--reflink=always", str(proj), str(manual)], check=True)
            fix_wall, fix = cidx(["fix-config", "--json"], manual, env)
            fix_cpu = CPU[0]
            assert fix["kind"] == "clone" and not fix["verification"]["problems"], fix
            shutil.rmtree(manual)
            row = {
                "chunks": status["chunks"],
                "files": status["files"],
                "index_bytes": index_bytes,
                "grow_seconds": grow,
                "reflink_wall": statistics.median(walls),
                "reflink_cpu": statistics.median(cpus),
                "reflink_inside": statistics.median(inside),
                "reflink_copy": statistics.median(copies),
                "reflink_fix": statistics.median(fixes),
                "reflink_method": method,
                "index_cow": index_cow,
                "index_plain": index_plain,
                "plain_wall": plain_wall,
                "plain_cpu": plain_cpu,
                "plain_copy": plain["copy_seconds"],
                "plain_method": plain["method"],
                "fix_config_wall": fix_wall,
                "fix_config_cpu": fix_cpu,
                "fix_config_inside": fix["seconds"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        for where in (xfs, ext4):
            subprocess.run(["umount", str(where)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        "| chunks | files | index on disk | `cidx clone`, reflink (XFS): wall / CPU / inside | "
        "copy | fix-config in clone | `cidx clone`, plain copy (XFS → ext4): wall / CPU / copy "
        "| `cidx fix-config` (full check): wall / CPU / inside | index folder alone: reflink / "
        "plain |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['chunks']:,} | {r['files']:,} | {r['index_bytes'] / 2**20:,.0f} MiB | "
            f"{r['reflink_wall']:.2f} / {r['reflink_cpu']:.2f} / {r['reflink_inside']:.3f} s | "
            f"{r['reflink_copy']:.3f} s | {r['reflink_fix']:.3f} s | {r['plain_wall']:.2f} / "
            f"{r['plain_cpu']:.2f} / {r['plain_copy']:.2f} s | {r['fix_config_wall']:.2f} / "
            f"{r['fix_config_cpu']:.2f} / {r['fix_config_inside']:.2f} s | "
            f"{r['index_cow']:.3f} / {r['index_plain']:.3f} s |"
        )


if __name__ == "__main__":
    main()
