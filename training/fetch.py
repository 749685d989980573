"""Download the training packages' sources and record what was taken.

    python -m training.fetch                 # every package in packages.json
    python -m training.fetch --lang go rust  # some languages only

Sources come from the registries through their own clients: PyPI wheels
(or sdists) with pip, npm tarballs with `npm pack`, Debian `golang-*-dev`
and `librust-*-dev` packages with `apt-get download`. Each is unpacked
under `training/.cache/src/<language>/<name>-<version>/` (only the source
files mining reads), and `training/.cache/fetched.json` records name,
version, registry and licence. A package whose licence is not permissive,
or that is a benchmark corpus (see `hygiene`), is refused and recorded as
such. Already fetched packages are not fetched again.
"""

from __future__ import annotations

import argparse
import email.parser
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from training.hygiene import is_benchmark_package, is_vendored

HERE = Path(__file__).parent
CACHE = HERE / ".cache"
SRC = CACHE / "src"
FETCHED = CACHE / "fetched.json"

EXTENSIONS = {
    "python": (".py",),
    "javascript": (".js", ".mjs", ".cjs", ".jsx"),
    "typescript": (".ts", ".tsx", ".mts", ".cts"),
    "go": (".go",),
    "rust": (".rs",),
}
SKIP_DIRS = frozenset(
    {"test", "tests", "testing", "__tests__", "testdata", "spec", "benches", "bench",
     "benchmarks", "examples", "example", "fixtures", "docs", "dist", "build", "bundles",
     "umd", "min", "target", "scripts", "_test", "__mocks__", "__fixtures__"}
)  # fmt: skip
SKIP_SUFFIXES = (".d.ts", ".d.mts", ".d.cts", ".min.js", "_test.go", ".test.js", ".spec.js",
                 ".test.ts", ".spec.ts", ".test.tsx", ".spec.tsx", ".test-d.ts", ".bench.ts",
                 ".fuzz.ts", ".map")  # fmt: skip
PERMISSIVE = re.compile(
    r"\b(mit|bsd|apache|isc|0bsd|unlicense|psf|python software foundation|zlib|cc0|"
    r"expat|public domain|boost|bsl)\b",
    re.IGNORECASE,
)
COPYLEFT = re.compile(r"\b(gpl|lgpl|agpl|mpl|mozilla|epl|cddl|eupl|sspl)\b", re.IGNORECASE)
MAX_FILE_BYTES = 400_000


def permissive(licence: str) -> bool:
    """MIT/BSD/Apache/ISC-like, and no copyleft term anywhere in the expression."""
    return bool(PERMISSIVE.search(licence)) and not COPYLEFT.search(licence)


def wanted(lang: str, rel: str) -> bool:
    parts = Path(rel).parts
    if any(p in SKIP_DIRS or p.startswith(".") for p in parts[:-1]) or is_vendored(rel):
        return False
    name = parts[-1]
    # npm packages of either language often ship the other (compiled JS beside
    # types, or JS with JSDoc): both are code worth mining.
    exts = EXTENSIONS[lang]
    if lang in ("javascript", "typescript"):
        exts = EXTENSIONS["javascript"] + EXTENSIONS["typescript"]
    return name.endswith(exts) and not name.endswith(SKIP_SUFFIXES)


def _copy_tree(lang: str, root: Path, dest: Path) -> int:
    count = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and wanted(lang, rel):
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            count += 1
    return count


def _run(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-400:]}")
    return done.stdout


# -- per registry ----------------------------------------------------------------------------


def fetch_pypi(name: str, tmp: Path) -> tuple[str, str, Path]:
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp), name], tmp)
    archive = next(p for p in tmp.iterdir() if p.suffix in (".whl", ".gz", ".zip"))
    out = tmp / "x"
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(out)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(out, filter="data")
    meta_file = next(
        (p for p in out.rglob("*") if p.name in ("METADATA", "PKG-INFO") and p.is_file()), None
    )
    version, licence = "?", ""
    if meta_file is not None:
        meta = email.parser.Parser().parsestr(meta_file.read_text(errors="replace"))
        version = meta.get("Version", "?")
        licence = meta.get("License-Expression") or ""
        if not licence or len(licence) > 80:
            classifiers = [c for c in meta.get_all("Classifier", []) if "License ::" in c]
            licence = (
                "; ".join(c.split("::")[-1].strip() for c in classifiers)
                or (meta.get("License") or "")[:80]
            )
    return version, licence, out


def fetch_npm(name: str, tmp: Path) -> tuple[str, str, Path]:
    _run(["npm", "pack", "-q", name], tmp)
    archive = next(tmp.glob("*.tgz"))
    out = tmp / "x"
    with tarfile.open(archive) as tf:
        tf.extractall(out, filter="data")
    root = out / "package"
    meta = json.loads((root / "package.json").read_text())
    licence = meta.get("license") or ""
    if isinstance(licence, dict):
        licence = licence.get("type", "")
    # The package's own source when it ships it, else its library folder.
    for folder in ("src", "lib", "source", "es"):
        if (root / folder).is_dir():
            return str(meta.get("version", "?")), str(licence), root / folder
    return str(meta.get("version", "?")), str(licence), root


def fetch_debian(name: str, tmp: Path) -> tuple[str, str, Path]:
    _run(["apt-get", "download", name], tmp)
    deb = next(tmp.glob("*.deb"))
    version = deb.name.split("_")[1]
    out = tmp / "x"
    _run(["dpkg-deb", "-x", str(deb), str(out)], tmp)
    copyright_file = out / "usr/share/doc" / name / "copyright"
    licence = ""
    if copyright_file.is_file():
        # The licence of `Files: *`, the stanza that covers the source.
        text = copyright_file.read_text(errors="replace")
        stanza = re.search(r"^Files:\s*\*\s*$(.*?)(?:^\s*$|\Z)", text, re.M | re.S)
        found = re.search(r"^License:\s*(.+)$", stanza.group(1) if stanza else text, re.M)
        licence = found.group(1).strip() if found else ""
    go = out / "usr/share/gocode/src"
    if go.is_dir():
        return version, licence, go
    return version, licence, out / "usr/share/cargo/registry"


FETCHERS = {
    "python": fetch_pypi,
    "javascript": fetch_npm,
    "typescript": fetch_npm,
    "go": fetch_debian,
    "rust": fetch_debian,
}


def fetch_one(lang: str, name: str) -> dict[str, object]:
    entry: dict[str, object] = {"language": lang, "name": name}
    if is_benchmark_package(name):
        return entry | {"status": "refused: benchmark corpus"}
    with tempfile.TemporaryDirectory(prefix="cidx-train-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            version, licence, root = FETCHERS[lang](name, tmp)
        except (RuntimeError, StopIteration, OSError, subprocess.TimeoutExpired) as exc:
            return entry | {"status": f"failed: {exc}"[:300]}
        entry |= {"version": version, "licence": licence,
                  "registry": {"python": "pypi", "javascript": "npm", "typescript": "npm"}.get(lang, "debian")}  # fmt: skip
        if not permissive(licence):
            return entry | {"status": "refused: licence"}
        dest = SRC / lang / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}-{version}"
        if dest.exists():
            shutil.rmtree(dest)
        files = _copy_tree(lang, root, dest)
        return entry | {"status": "ok" if files else "refused: no source files",
                        "files": files, "path": dest.relative_to(CACHE).as_posix()}  # fmt: skip


def _record(key: str, entry: dict[str, object]) -> None:
    """Add one entry to fetched.json; several fetches (one per language) may run at once."""
    import fcntl

    with open(CACHE / "fetched.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = json.loads(FETCHED.read_text()) if FETCHED.exists() else {}
        done[key] = entry
        tmp = FETCHED.with_suffix(".tmp")
        tmp.write_text(json.dumps(done, indent=1, sort_keys=True))
        tmp.replace(FETCHED)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lang", nargs="*", default=None)
    ap.add_argument("--packages", type=Path, default=HERE / "packages.json")
    a = ap.parse_args(argv)
    wanted_packages: dict[str, list[str]] = json.loads(a.packages.read_text())
    done: dict[str, dict[str, object]] = json.loads(FETCHED.read_text()) if FETCHED.exists() else {}
    CACHE.mkdir(exist_ok=True)
    for lang, names in wanted_packages.items():
        if a.lang and lang not in a.lang:
            continue
        for name in names:
            key = f"{lang}:{name}"
            if done.get(key, {}).get("status") == "ok":
                continue
            entry = fetch_one(lang, name)
            done[key] = entry
            _record(key, entry)
            print(f"{key}: {entry.get('version', '')} {entry.get('licence', '')} {entry['status']} "
                  f"{entry.get('files', '')}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
