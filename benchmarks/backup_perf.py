"""`cidx backup` and `cidx restore` of a large index, beside plain `tar` of the same folder.

    python benchmarks/backup_perf.py [--points 100000] [--where DIR] [--fs xfs|ext4]

The index is built cheaply, without embedding anything: `cidx init` makes
the project, then points shaped like cidx's (a 384-d dense vector, a sparse
BM25 vector, a code-sized payload; `store_scale.Synthetic`) are written
straight into its collection through `EdgeStore`, and the state database's
manifest gets one record per file listing its chunk ids — so `cidx status`
and the restore's checks see a consistent index of that size.

Then, in the same run, on the same folder, each timed end to end as a
process (the real CLI, its start-up included):

    tar -cf                 the `.code-indexer/` folder, uncompressed
    tar --zstd -cf          the same, compressed by the zstd tool
    sha256sum               every file of the folder (tar + this = tar with checksums)
    cidx backup             snapshot (writes held), manifest, zstd stream, sha256 of every file
    cidx backup verify      read it all back, check every sha256
    tar -xf / --zstd -xf    unpack the tar archives into a new folder
    cidx restore --into     extract, check, verify counts and a sample query, swap in

and prints seconds, MB/s of index data (the files' apparent size, which
is what every tool reads), archive sizes, and cidx's ratio to tar.
`--fs` runs it all on a fresh loop-mounted filesystem (root only), to see
copy-on-write snapshots (xfs) against plain copies (ext4).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store_scale import Synthetic

from cidx.owner.lock import OwnerLock
from cidx.project import ProjectPaths
from cidx.service import init_project
from cidx.state.manifest import FileRecord

BATCH = 512


def build(root: Path, n: int) -> None:
    from cidx.engine import Engine

    root.mkdir(parents=True)
    init_project(root)
    paths = ProjectPaths(root)
    data = Synthetic()
    files: dict[str, list[str]] = defaultdict(list)
    with OwnerLock(paths, "benchmark"):
        engine, _ = Engine.open(paths)
        try:
            for start in range(0, n, BATCH):
                batch = data.points(start, min(BATCH, n - start))
                engine.store.upsert(engine.collection, batch)
                for p in batch:
                    files[str(p.payload["path"])].append(p.id)
            now = time.time()
            records = [
                FileRecord(path, 1000, 0, f"{i:064x}", "indexed", "python", tuple(ids), now)
                for i, (path, ids) in enumerate(sorted(files.items()))
            ]
            with engine.db.transaction() as tx:
                engine.manifest.put(tx, records)
            engine.flush()
        finally:
            engine.close()


def timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def apparent(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def allocated(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


@contextlib.contextmanager
def workspace(where: Path | None, fs: str | None) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="cidx-backup-bench-", dir=where))
    try:
        if fs is None:
            yield base
            return
        image, mnt = base / "fs.img", base / "mnt"
        mnt.mkdir()
        with open(image, "wb") as fh:
            fh.truncate(6 * 1024**3)
        mkfs = {"xfs": ["mkfs.xfs", "-q", "-m", "reflink=1"], "ext4": ["mkfs.ext4", "-q", "-F"]}
        subprocess.run([*mkfs[fs], str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--where", type=Path, default=None, help="folder for the scratch files")
    ap.add_argument("--fs", choices=["xfs", "ext4"], default=None)
    args = ap.parse_args()
    cidx = [sys.executable, "-m", "cidx"]
    with workspace(args.where, args.fs) as ws:
        root = ws / "project"
        t = time.perf_counter()
        build(root, args.points)
        index = root / ".code-indexer"
        data = apparent(index)
        print(
            f"index: {args.points:,} points, {data / 1e6:.0f} MB of files "
            f"({allocated(index) / 1e6:.0f} MB allocated), built in {time.perf_counter() - t:.0f} s"
        )
        out = ws / "out"
        out.mkdir()
        rows: list[tuple[str, float, int | None]] = []
        rows.append(
            (
                "tar -cf",
                timed(["tar", "-cf", str(out / "plain.tar"), ".code-indexer"], root),
                (out / "plain.tar").stat().st_size,
            )
        )
        rows.append(
            (
                "tar --zstd -cf",
                timed(["tar", "--zstd", "-cf", str(out / "z.tar.zst"), ".code-indexer"], root),
                (out / "z.tar.zst").stat().st_size,
            )
        )
        # tar with checksums: what `cidx backup` does beyond compressing.
        listing = sorted(str(p.relative_to(root)) for p in index.rglob("*") if p.is_file())
        rows.append(("sha256sum (all files)", timed(["sha256sum", *listing], root), None))
        made = subprocess.run(
            [*cidx, "backup", "--json", "--output", str(out / "cidx.tar.zst")],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(made.stdout)
        rows.append(("cidx backup", result["seconds"], result["bytes"]))
        rows.append(
            (
                "cidx backup verify",
                timed([*cidx, "backup", "verify", str(out / "cidx.tar.zst")], root),
                None,
            )
        )
        for name, archive, flags in (
            ("tar -xf", "plain.tar", []),
            ("tar --zstd -xf", "z.tar.zst", ["--zstd"]),
        ):
            target = ws / f"untar-{len(rows)}"
            target.mkdir()
            rows.append(
                (
                    name,
                    timed(["tar", *flags, "-xf", str(out / archive), "-C", str(target)], root),
                    None,
                )
            )
            shutil.rmtree(target)
        target = ws / "restored"
        target.mkdir()
        t = time.perf_counter()
        subprocess.run(
            [*cidx, "restore", str(out / "cidx.tar.zst"), "--into", str(target)],
            cwd=ws,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        rows.append(("cidx restore --into", time.perf_counter() - t, None))
        status = json.loads(
            subprocess.run(
                [*cidx, "status", "--json"], cwd=target, check=True, capture_output=True, text=True
            ).stdout
        )
        assert status["points"] == status["chunks"] == args.points, status

        print(
            f"cidx backup: writes held {result['paused_seconds']:.2f} s ({result['copy_method']})"
        )
        print(f"{'step':<22}{'seconds':>9}{'MB/s':>9}{'archive MB':>12}")
        for name, seconds, size in rows:
            size_text = f"{size / 1e6:.0f}" if size is not None else ""
            print(f"{name:<22}{seconds:>9.2f}{data / 1e6 / seconds:>9.0f}{size_text:>12}")
        by = {name: seconds for name, seconds, _ in rows}
        checked = by["tar --zstd -cf"] + by["sha256sum (all files)"]
        print(f"backup / (tar --zstd -cf + sha256sum) {by['cidx backup'] / checked:.2f}")
        print(
            f"ratios: backup / tar -cf {by['cidx backup'] / by['tar -cf']:.2f}, "
            f"backup / tar --zstd -cf {by['cidx backup'] / by['tar --zstd -cf']:.2f}, "
            f"restore / tar -xf {by['cidx restore --into'] / by['tar -xf']:.2f}, "
            f"restore / tar --zstd -xf {by['cidx restore --into'] / by['tar --zstd -xf']:.2f}"
        )


if __name__ == "__main__":
    main()
