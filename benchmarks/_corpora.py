"""The retrieval benchmark's corpora in five languages, built once into benchmarks/.cache/.

Python corpora are published wheels turned into benchmarks by the public
benchmark's `build_corpus.py`; JavaScript/TypeScript, Go and Rust corpora
come from npm tarballs (`npm pack`, the package's `src/` or `lib/`, never
bundles or `.d.ts`) and Debian `golang-*-dev` / `librust-*-dev` packages
(`apt-get download` + `dpkg-deb -x`), turned into benchmarks by
`build_corpus_multi.py`. Both builders live in `../shared/eval/` (set
`CIDX_EVAL` to use another copy). Versions are pinned, so every run scores
the same queries; `ensure()` builds what is missing and returns the folders.

No corpus here may be trained on: `training/hygiene.py` names every one of
these packages, and a test checks that it does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(__file__).parent / ".cache"
BENCH = CACHE / "bench"
DOWNLOADS = CACHE / "downloads"


def _find_eval() -> Path:
    """`shared/eval` beside the checkout or beside one of its parent folders."""
    if os.environ.get("CIDX_EVAL"):
        return Path(os.environ["CIDX_EVAL"])
    for folder in Path(__file__).resolve().parents[1:]:
        if (folder / "shared" / "eval" / "build_corpus.py").is_file():
            return folder / "shared" / "eval"
    return Path(__file__).resolve().parents[2] / "shared" / "eval"


EVAL = _find_eval()


@dataclass(frozen=True)
class Corpus:
    name: str
    language: str  # python, javascript, typescript, go, rust
    registry: str  # pypi, npm, debian
    package: str  # what the registry calls it
    version: str
    folder: str = ""  # npm: the folder of the tarball that holds the source
    public: bool = False  # the public benchmark (never tuned on); else development


CORPORA: tuple[Corpus, ...] = (
    Corpus("requests", "python", "pypi", "requests", "2.34.2", public=True),
    Corpus("jinja2", "python", "pypi", "jinja2", "3.1.6", public=True),
    Corpus("click", "python", "pypi", "click", "8.5.1"),
    Corpus("flask", "python", "pypi", "flask", "3.1.3"),
    Corpus("httpx", "python", "pypi", "httpx", "0.28.1"),
    Corpus("attrs", "python", "pypi", "attrs", "26.1.0"),
    Corpus("werkzeug", "python", "pypi", "werkzeug", "3.1.9"),
    Corpus("axios", "javascript", "npm", "axios", "1.21.1", "lib"),
    Corpus("commander", "javascript", "npm", "commander", "15.1.0", "lib"),
    Corpus("ws", "javascript", "npm", "ws", "8.23.0", "lib"),
    Corpus("express", "javascript", "npm", "express", "5.3.0", "lib"),
    Corpus("zod", "typescript", "npm", "zod", "4.6.7", "src"),
    Corpus("rxjs", "typescript", "npm", "rxjs", "7.8.2", "src"),
    Corpus("query-core", "typescript", "npm", "@tanstack/query-core", "5.108.4", "src"),
    Corpus("immer", "typescript", "npm", "immer", "11.2.13", "src"),
    Corpus("cobra", "go", "debian", "golang-github-spf13-cobra-dev", "1.6.1-1"),
    Corpus("go-cmp", "go", "debian", "golang-github-google-go-cmp-dev", "0.5.9-1"),
    Corpus("mux", "go", "debian", "golang-github-gorilla-mux-dev", "1.8.0-1"),
    Corpus("logrus", "go", "debian", "golang-github-sirupsen-logrus-dev", "1.9.0-1"),
    Corpus("bytes", "rust", "debian", "librust-bytes-dev", "1.2.1-1"),
    Corpus("itertools", "rust", "debian", "librust-itertools-dev", "0.10.3-1"),
    Corpus("regex-syntax", "rust", "debian", "librust-regex-syntax-dev", "0.6.27-1"),
    Corpus("serde-json", "rust", "debian", "librust-serde-json-dev", "1.0.87-1"),
)
LANGUAGES = ("python", "javascript", "typescript", "go", "rust")
BY_NAME = {c.name: c for c in CORPORA}
_MULTI_LANG = {"javascript": "js", "typescript": "ts", "go": "go", "rust": "rust"}


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def _source(corpus: Corpus, tmp: Path) -> Path:
    """Download and unpack the corpus's package; the folder the builder reads."""
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    if corpus.registry == "pypi":
        spec = f"{corpus.package}=={corpus.version}"
        found = sorted(DOWNLOADS.glob(f"{corpus.package.replace('-', '_')}-{corpus.version}-*.whl"))
        found += sorted(DOWNLOADS.glob(f"{corpus.package}-{corpus.version}-*.whl"))
        if not found:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--only-binary=:all:",
                  "-d", str(DOWNLOADS), spec], DOWNLOADS)  # fmt: skip
            found = sorted(DOWNLOADS.glob(f"*-{corpus.version}-*.whl"))
            found = [
                p
                for p in found
                if p.name.lower().startswith(corpus.package.lower().replace("-", "_"))
            ]
        return found[0]
    if corpus.registry == "npm":
        tgz = DOWNLOADS / f"{corpus.package.lstrip('@').replace('/', '-')}-{corpus.version}.tgz"
        if not tgz.exists():
            _run(["npm", "pack", "-q", f"{corpus.package}@{corpus.version}"], DOWNLOADS)
        with tarfile.open(tgz) as tf:
            tf.extractall(tmp, filter="data")
        return tmp / "package" / corpus.folder
    deb = DOWNLOADS / f"{corpus.package}_{corpus.version}_all.deb"
    found = sorted(DOWNLOADS.glob(f"{corpus.package}_{corpus.version}_*.deb"))
    if not found:
        _run(["apt-get", "download", f"{corpus.package}={corpus.version}"], DOWNLOADS)
        found = sorted(DOWNLOADS.glob(f"{corpus.package}_{corpus.version}_*.deb"))
    deb = found[0]
    _run(["dpkg-deb", "-x", str(deb), str(tmp)], tmp)
    if corpus.language == "go":
        src = tmp / "usr/share/gocode/src"
        # The module's own folder: the first level below the host that holds .go files.
        return next(p for p in sorted(src.glob("*/*/*")) if p.is_dir())
    return next(p for p in sorted((tmp / "usr/share/cargo/registry").iterdir()) if p.is_dir())


def build(corpus: Corpus) -> Path:
    out = BENCH / corpus.name
    if (out / "queries.json").is_file():
        return out
    tmp = Path(tempfile.mkdtemp(prefix="cidx-corpus-"))
    try:
        source = _source(corpus, tmp)
        partial = tmp / "out"
        if corpus.language == "python":
            cmd = [sys.executable, str(EVAL / "build_corpus.py"), str(source), str(partial)]
        else:
            cmd = [sys.executable, str(EVAL / "build_corpus_multi.py"),
                   _MULTI_LANG[corpus.language], str(source), str(partial)]  # fmt: skip
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        BENCH.mkdir(parents=True, exist_ok=True)
        if out.exists():
            shutil.rmtree(out)
        shutil.move(partial, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def ensure(names: list[str] | None = None, languages: list[str] | None = None) -> list[Path]:
    """Build the named corpora (default: all, or those of `languages`); their folders."""
    chosen = [BY_NAME[n] for n in names] if names else list(CORPORA)
    if languages:
        chosen = [c for c in chosen if c.language in languages]
    return [build(c) for c in chosen]


if __name__ == "__main__":
    for path in ensure(sys.argv[1:] or None):
        print(path)
