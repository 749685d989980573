"""The project walker and its ignore rules, on real files in temporary trees."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cidx.ignore import (
    DEFAULT_EXCLUDED_DIRS,
    DEFAULT_EXCLUDED_FILES,
    HARD_EXCLUDED_NAMES,
    IgnoreRules,
)
from cidx.walk import SkippedFile, WalkedFile, WalkResult, human_size, stat_file, walk_project

MB = 1024 * 1024


def write(root: Path, rel: str, text: str = "x\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def walk(root: Path, *, max_file_size: int = MB, rules: IgnoreRules | None = None) -> WalkResult:
    return walk_project(root, max_file_size=max_file_size, rules=rules)


def rels(root: Path, *, max_file_size: int = MB, rules: IgnoreRules | None = None) -> list[str]:
    return [f.rel for f in walk(root, max_file_size=max_file_size, rules=rules).files]


def skips(result: WalkResult) -> dict[str, str]:
    return {s.rel: s.reason for s in result.skipped}


# --------------------------------------------------------------- .gitignore


def test_gitignore_negation_anchoring_and_nesting(tmp_path: Path) -> None:
    write(
        tmp_path,
        ".gitignore",
        "*.log\n!keep.log\n/top.txt\ndocs/*.tmp\ncache/\n# a comment\n\n",
    )
    write(tmp_path, "sub/.gitignore", "!b.log\n*.md\n")
    for rel in [
        "a.log",  # *.log
        "keep.log",  # re-included by !keep.log
        "sub/b.log",  # *.log, re-included by the deeper sub/.gitignore
        "sub/c.log",  # *.log
        "top.txt",  # /top.txt is anchored to the root
        "sub/top.txt",  # ... so this one stays
        "docs/x.tmp",  # a slash in the middle anchors docs/*.tmp
        "sub/docs/x.tmp",  # ... so this one stays
        "cache/f.py",  # cache/ matches the directory
        "other/cache",  # ... but not a file named cache
        "README.md",  # sub/.gitignore's *.md applies only below sub/
        "sub/notes.md",
    ]:
        write(tmp_path, rel)

    assert rels(tmp_path) == [
        ".gitignore",
        "README.md",
        "keep.log",
        "other/cache",
        "sub/.gitignore",
        "sub/b.log",
        "sub/docs/x.tmp",
        "sub/top.txt",
    ]


def test_files_inside_an_excluded_directory_cannot_be_re_included(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "logs/\n!logs/important.txt\n")
    write(tmp_path, "logs/important.txt")
    assert rels(tmp_path) == [".gitignore"]
    assert walk(tmp_path).ignored_dirs == 1


def test_contents_pattern_leaves_the_directory_open_for_re_includes(tmp_path: Path) -> None:
    # `data/**` excludes what is inside data/, not data/ itself, so a later
    # negation can bring one file back (the `.gitkeep` idiom).
    write(tmp_path, ".gitignore", "data/**\n!data/.gitkeep\n")
    write(tmp_path, "data/.gitkeep", "")
    write(tmp_path, "data/big.csv")
    write(tmp_path, "data/nested/x.csv")
    assert rels(tmp_path) == [".gitignore", "data/.gitkeep"]


def test_git_info_exclude_applies_from_the_root(tmp_path: Path) -> None:
    write(tmp_path, ".git/info/exclude", "scratch/\n*.secret\n")
    write(tmp_path, "scratch/a.py")
    write(tmp_path, "deep/x.secret")
    write(tmp_path, "deep/y.py")
    assert rels(tmp_path) == ["deep/y.py"]


def test_gitignore_overrides_info_exclude(tmp_path: Path) -> None:
    write(tmp_path, ".git/info/exclude", "*.gen\n")
    write(tmp_path, ".gitignore", "!wanted.gen\n")
    write(tmp_path, "wanted.gen")
    write(tmp_path, "other.gen")
    assert rels(tmp_path) == [".gitignore", "wanted.gen"]


def test_info_exclude_of_a_worktree_is_found_through_the_dot_git_file(tmp_path: Path) -> None:
    common = tmp_path / "main.git"
    write(common, "info/exclude", "*.private\n")
    write(common, "worktrees/wt/commondir", "../..\n")
    project = tmp_path / "project"
    write(project, ".git", f"gitdir: {common / 'worktrees' / 'wt'}\n")
    write(project, "a.private")
    write(project, "a.py")
    assert rels(project) == ["a.py"]


# -------------------------------------------------------------- .cidxignore


def test_cidxignore_overrides_gitignore_both_ways(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "generated/\n*.txt\n")
    write(tmp_path, ".cidxignore", "!generated/\n!notes.txt\nsecrets/\n")
    write(tmp_path, "generated/gitignored_but_wanted.py")
    write(tmp_path, "notes.txt")
    write(tmp_path, "other.txt")
    write(tmp_path, "secrets/key.py")
    write(tmp_path, "main.py")
    assert rels(tmp_path) == [
        ".cidxignore",
        ".gitignore",
        "generated/gitignored_but_wanted.py",
        "main.py",
        "notes.txt",
    ]


def test_nested_cidxignore_applies_below_its_directory(tmp_path: Path) -> None:
    write(tmp_path, "pkg/.cidxignore", "fixtures/\n")
    write(tmp_path, "pkg/fixtures/a.py")
    write(tmp_path, "fixtures/b.py")
    assert rels(tmp_path) == ["fixtures/b.py", "pkg/.cidxignore"]


def test_cidxignore_re_includes_a_default_exclude_without_leaking_into_it(tmp_path: Path) -> None:
    # `!build/` brings the folder back; what is inside is still judged on its
    # own, so the binary-extension default and build/.gitignore still apply.
    write(tmp_path, ".cidxignore", "!build/\n")
    write(tmp_path, "build/gen.py")
    write(tmp_path, "build/gen.o")
    write(tmp_path, "build/.gitignore", "*.tmp\n")
    write(tmp_path, "build/scratch.tmp")
    write(tmp_path, "dist/bundle.js")  # still excluded: only build/ was named
    assert rels(tmp_path) == [".cidxignore", "build/.gitignore", "build/gen.py"]


def test_cidxignore_re_includes_a_default_excluded_file(tmp_path: Path) -> None:
    write(tmp_path, ".cidxignore", "!Cargo.lock\n")
    write(tmp_path, "Cargo.lock")
    write(tmp_path, "yarn.lock")
    assert rels(tmp_path) == [".cidxignore", "Cargo.lock"]


def test_gitignore_negation_does_not_re_include_a_default_exclude(tmp_path: Path) -> None:
    # A whitelist-style .gitignore must not pull dependencies back in.
    write(tmp_path, ".gitignore", "*\n!*/\n!*.js\n")
    write(tmp_path, "src/app.js")
    write(tmp_path, "node_modules/lib/index.js")
    assert rels(tmp_path) == ["src/app.js"]


@pytest.mark.parametrize("name", sorted(HARD_EXCLUDED_NAMES))
def test_hard_excludes_cannot_be_re_included(tmp_path: Path, name: str) -> None:
    write(tmp_path, ".cidxignore", f"!{name}/\n!{name}\n")
    write(tmp_path, f"{name}/inner.py")
    write(tmp_path, f"sub/{name}/inner.py")
    assert rels(tmp_path) == [".cidxignore"]


# --------------------------------------------------------- default excludes


@pytest.mark.parametrize("name", sorted(DEFAULT_EXCLUDED_DIRS | {"foo.egg-info"}))
def test_each_default_excluded_directory(tmp_path: Path, name: str) -> None:
    write(tmp_path, f"{name}/inner.py")
    write(tmp_path, f"nested/{name}/inner.py")
    write(tmp_path, "nested/kept.py")
    result = walk(tmp_path)
    assert [f.rel for f in result.files] == ["nested/kept.py"]
    assert result.ignored_dirs == 2


@pytest.mark.parametrize(
    "name",
    sorted(
        DEFAULT_EXCLUDED_FILES
        | {
            "yarn.lock",
            "poetry.lock",
            "Cargo.lock",
            "Gemfile.lock",
            "composer.lock",
            "uv.lock",
            "Pipfile.lock",
            "app.min.js",
            "style.min.css",
            "app.js.map",
            "logo.png",
            "LOGO.PNG",
            "clip.mp4",
            "song.mp3",
            "src.tar.gz",
            "font.woff2",
            "lib.so",
            "main.o",
            "Main.class",
            "app.jar",
            "mod.pyc",
            "pkg-1.0-py3-none-any.whl",
            "paper.pdf",
            "data.sqlite",
            "app.db",
            "model.onnx",
            "weights.bin",
            "model.safetensors",
            "arr.npy",
            "table.parquet",
        }
    ),
)
def test_each_default_excluded_file(tmp_path: Path, name: str) -> None:
    write(tmp_path, name)
    write(tmp_path, f"deep/{name}")
    assert rels(tmp_path) == []


def test_text_files_that_look_close_to_excludes_are_kept(tmp_path: Path) -> None:
    for rel in [
        "icon.svg",
        ".vscode/settings.json",
        "out/report.py",
        "env/settings.py",
        "lockfile.py",
        "app.js",
        "builder/x.py",
        "Makefile",
        ".env.example",
    ]:
        write(tmp_path, rel)
    assert rels(tmp_path) == [
        ".env.example",
        ".vscode/settings.json",
        "Makefile",
        "app.js",
        "builder/x.py",
        "env/settings.py",
        "icon.svg",
        "lockfile.py",
        "out/report.py",
    ]


def test_virtualenv_is_detected_by_pyvenv_cfg_whatever_its_name(tmp_path: Path) -> None:
    write(tmp_path, "myenv/pyvenv.cfg", "home = /usr/bin\n")
    write(tmp_path, "myenv/lib/python3.11/site.py")
    write(tmp_path, "env/pyvenv.cfg", "home = /usr/bin\n")
    write(tmp_path, "env/bin/activate")
    write(tmp_path, "app.py")
    result = walk(tmp_path)
    assert [f.rel for f in result.files] == ["app.py"]
    assert result.ignored_dirs == 2


def test_cidxignore_re_includes_a_virtualenv(tmp_path: Path) -> None:
    write(tmp_path, ".cidxignore", "!tools-env/\n")
    write(tmp_path, "tools-env/pyvenv.cfg", "home = /usr/bin\n")
    assert rels(tmp_path) == [".cidxignore", "tools-env/pyvenv.cfg"]


def test_dotfiles_are_walked_like_anything_else(tmp_path: Path) -> None:
    write(tmp_path, ".github/workflows/ci.yml")
    write(tmp_path, ".eslintrc.js")
    assert rels(tmp_path) == [".eslintrc.js", ".github/workflows/ci.yml"]


# ---------------------------------------------------------- agreement with git


GIT_CASES: dict[str, str] = {
    ".gitignore": "\n".join(
        [
            "*.log",
            "!important.log",
            "/root_only.txt",
            "a/b/anchored.txt",
            "**/tmp/",
            "foo/**",
            "!foo/keep.txt",
            "bar/*",
            "!bar/kept/",
            "*.d/",
            "!special.d/",
            "\\#hash.txt",
            "trailing.txt   ",
            "[ab]x.cfg",
            "doc/**/*.pdf",
            "logs",
            "!logs/keep.txt",
            "contents/**",
            "!contents/sub/",
            "",
        ]
    ),
    "nested/.gitignore": "!*.log\n/local.txt\nsub/\n",
    "nested/deeper/.gitignore": "*.log\n!x.log\n",
    "whitelist/.gitignore": "*\n!*/\n!*.py\n",
}
GIT_FILES = [
    "app.log",
    "important.log",
    "sub/important.log",
    "root_only.txt",
    "x/root_only.txt",
    "a/b/anchored.txt",
    "z/a/b/anchored.txt",
    "tmp/a.py",
    "x/tmp/b.py",
    "tmp.py",
    "foo/a.py",
    "foo/keep.txt",
    "foo/deep/keep.txt",
    "bar/a.py",
    "bar/kept/a.py",
    "bar/gone/a.py",
    "src.d/a.py",
    "special.d/a.py",
    "#hash.txt",
    "trailing.txt",
    "ax.cfg",
    "cx.cfg",
    "doc/a.pdf",
    "doc/x/y/b.pdf",
    "doc/c.md",
    "logs/keep.txt",
    "x/logs",
    "nested/a.log",
    "nested/local.txt",
    "nested/x/local.txt",
    "nested/sub/a.py",
    "nested/x/sub/a.py",
    "nested/deeper/y.log",
    "nested/deeper/x.log",
    "contents/sub/f.py",
    "contents/g.py",
    "whitelist/a.py",
    "whitelist/a.txt",
    "whitelist/d/b.py",
    "whitelist/d/c.txt",
    "plain.py",
]


def test_agrees_with_git_on_which_files_are_ignored(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed, so there is nothing to compare with.")
    for rel, text in GIT_CASES.items():
        write(tmp_path, rel, text)
    for rel in GIT_FILES:
        write(tmp_path, rel)
    home = tmp_path.parent / (tmp_path.name + "-home")
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    expected = sorted(p for p in listed.split("\0") if p)
    assert rels(tmp_path, rules=IgnoreRules(tmp_path, defaults=False)) == expected


# ------------------------------------------------------------------ symlinks


def test_symlink_to_a_file_is_indexed_under_its_own_path(tmp_path: Path) -> None:
    outside = write(tmp_path.parent / (tmp_path.name + "-outside"), "target.py", "abcdef")
    (tmp_path / "link.py").symlink_to(outside)
    result = walk(tmp_path)
    assert result.files == [WalkedFile("link.py", 6, outside.stat().st_mtime_ns)]


def test_broken_symlink_and_symlink_loop_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "dangling.py").symlink_to(tmp_path / "missing.py")
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    (tmp_path / "self").symlink_to(tmp_path / "self")
    result = walk(tmp_path)
    assert result.files == []
    assert skips(result) == {
        "dangling.py": "broken_symlink",
        "loop_a": "symlink_loop",
        "loop_b": "symlink_loop",
        "self": "symlink_loop",
    }
    assert "missing.py" in next(s for s in result.skipped if s.rel == "dangling.py").detail


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    write(tmp_path, "real/a.py")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real" / "up").symlink_to(tmp_path, target_is_directory=True)
    result = walk(tmp_path)
    assert [f.rel for f in result.files] == ["real/a.py"]
    assert result.symlinked_dirs == 2
    assert result.skipped == []


def test_ignored_symlink_is_dropped_before_it_is_followed(tmp_path: Path) -> None:
    (tmp_path / "image.png").symlink_to(tmp_path / "missing.png")
    result = walk(tmp_path)
    assert result.files == [] and result.skipped == []


# ------------------------------------------------------- unreadable directory


@contextlib.contextmanager
def as_unprivileged_user() -> Iterator[None]:
    """Run the body with an effective uid that permissions apply to.

    As root, permission bits never stop a read, so a chmod-000 directory
    proves nothing. Dropping the effective uid (keeping the real one, so it
    can be taken back) makes the kernel check them for real.
    """
    if os.geteuid() != 0:
        yield
        return
    try:
        os.setegid(65534)
        os.seteuid(65534)
    except PermissionError:
        os.setegid(0)
        pytest.skip("Running as root without the right to drop privileges.")
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    # pytest's tmp_path sits under a 0700 directory owned by root, which the
    # unprivileged user could not even reach.
    path = Path(tempfile.mkdtemp(prefix="cidx-walk-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for p in [path, *path.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(path)


def test_unreadable_directory_is_reported_and_the_walk_goes_on(shared_tmp: Path) -> None:
    write(shared_tmp, ".gitignore", "*.tmp\n")
    write(shared_tmp, "locked/secret.py")
    write(shared_tmp, "listable_only/f.py")
    write(shared_tmp, "zz_open/a.py")
    write(shared_tmp, "zz_open/b.tmp")
    for p in [shared_tmp, *shared_tmp.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    (shared_tmp / "locked").chmod(0)
    (shared_tmp / "listable_only").chmod(0o744)  # names readable, entries not
    walk(shared_tmp)  # load everything Python needs while still privileged

    with as_unprivileged_user():
        result = walk(shared_tmp)
        one = stat_file(
            shared_tmp,
            "listable_only/f.py",
            max_file_size=MB,
            rules=IgnoreRules(shared_tmp),
        )

    assert [f.rel for f in result.files] == [".gitignore", "zz_open/a.py"]
    assert skips(result) == {"listable_only/f.py": "unreadable", "locked": "unreadable"}
    locked = next(s for s in result.skipped if s.rel == "locked")
    assert "cannot be listed" in locked.detail and "Permission denied" in locked.detail
    assert isinstance(one, SkippedFile) and one.reason == "unreadable"


# ------------------------------------------------------------- size, special


def test_too_large_files_are_skipped_with_a_readable_size(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_bytes(b"x" * int(2.5 * MB))
    (tmp_path / "exact.txt").write_bytes(b"x" * MB)
    result = walk(tmp_path, max_file_size=MB)
    assert [f.rel for f in result.files] == ["exact.txt"]
    assert result.skipped == [
        SkippedFile(
            "big.json",
            "too_large",
            "2.5 MB is over the 1.0 MB limit (cidx init --max-file-size).",
        )
    ]


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 1, 1023, 1024, 1536, 5 * MB, 3 * 1024 * MB)] == [
        "0 bytes",
        "1 byte",
        "1023 bytes",
        "1.0 KB",
        "1.5 KB",
        "5.0 MB",
        "3.0 GB",
    ]


@pytest.mark.timeout(30)
def test_fifo_and_socket_are_never_opened_and_only_counted(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")  # opening it for reading would block forever
    sock_dir = Path(tempfile.mkdtemp(prefix="cidx-sock-"))  # AF_UNIX paths are short
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(sock_dir / "s"))
        try:
            write(sock_dir, "a.py")
            result = walk(sock_dir)
            assert [f.rel for f in result.files] == ["a.py"]
            assert result.special_files == 1
        finally:
            sock.close()
    finally:
        shutil.rmtree(sock_dir)
    write(tmp_path, "a.py")
    result = walk(tmp_path)
    assert [f.rel for f in result.files] == ["a.py"]
    assert result.special_files == 1 and result.skipped == []


def test_the_walk_never_opens_an_indexed_file(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.tmp\n")
    write(tmp_path, "pkg/.cidxignore", "x/\n")
    for i in range(20):
        write(tmp_path, f"pkg/m{i}.py")
    opened: list[str] = []
    watching = True

    def hook(event: str, args: tuple[object, ...]) -> None:
        if watching and event == "open" and isinstance(args[0], str):
            opened.append(args[0])

    sys.addaudithook(hook)  # audit hooks cannot be removed; the flag turns it off
    try:
        result = walk(tmp_path)
    finally:
        watching = False
    assert len(result.files) == 22
    assert any(Path(p).name == ".gitignore" for p in opened)  # the hook does see opens
    assert {Path(p).name for p in opened} <= {".gitignore", ".cidxignore", "exclude", ".git"}


def test_undecodable_name_is_skipped_with_a_printable_path(tmp_path: Path) -> None:
    try:
        (tmp_path / os.fsdecode(b"bad\xff.py")).write_text("x")
    except (OSError, UnicodeEncodeError):
        pytest.skip("This file system refuses names that are not valid UTF-8.")
    write(tmp_path, "good.py")
    result = walk(tmp_path)
    assert [f.rel for f in result.files] == ["good.py"]
    assert skips(result) == {"bad\\xff.py": "undecodable_name"}


class _DeletingRules(IgnoreRules):
    """Rules that delete a file right after it is listed, before its stat."""

    def ignores_entry(self, parent: str, name: str, is_dir: bool) -> bool:
        if name == "ephemeral.py":
            (self.root / parent / name).unlink()
        return super().ignores_entry(parent, name, is_dir)


def test_file_vanishing_between_listing_and_stat_is_dropped_and_counted(tmp_path: Path) -> None:
    write(tmp_path, "ephemeral.py")
    write(tmp_path, "stays.py")
    result = walk(tmp_path, rules=_DeletingRules(tmp_path))
    assert [f.rel for f in result.files] == ["stays.py"]
    assert result.vanished == 1 and result.skipped == []


def test_deep_tree_walks_without_recursion(tmp_path: Path) -> None:
    rel = "/".join(["d"] * 400) + "/leaf.py"
    write(tmp_path, rel)
    assert rels(tmp_path) == [rel]
    assert IgnoreRules(tmp_path).is_ignored(rel, is_dir=False) is False


def test_root_that_is_not_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    from cidx.errors import UsageError

    with pytest.raises(UsageError, match="not a directory"):
        walk(tmp_path / "missing")


# ---------------------------------------------------- determinism, stat_file


def _mixed_tree(root: Path) -> None:
    write(root, ".gitignore", "*.log\nignored_dir/\n")
    write(root, "sub/.cidxignore", "!special.log\n")
    names = ["zeta.py", "Alpha.py", "a-b.py", "a/b.py", "a.b/c.py", "a0.py", "é.py", "_x.py"]
    for name in reversed(names):
        write(root, f"src/{name}")
    write(root, "x.log")
    write(root, "sub/special.log")
    write(root, "sub/other.log")
    write(root, "ignored_dir/a.py")
    write(root, "node_modules/a.js")
    write(root, "img.png")
    (root / "huge.txt").write_bytes(b"x" * 2048)
    (root / "link.py").symlink_to(root / "src" / "zeta.py")
    (root / "dangling.py").symlink_to(root / "nope.py")
    (root / "dirlink").symlink_to(root / "src", target_is_directory=True)
    os.mkfifo(root / "fifo")


def test_walk_is_deterministic_and_sorted(tmp_path: Path) -> None:
    _mixed_tree(tmp_path)
    first = walk(tmp_path, max_file_size=1024)
    second = walk(tmp_path, max_file_size=1024, rules=IgnoreRules(tmp_path))
    assert first == second
    assert [f.rel for f in first.files] == sorted(f.rel for f in first.files)
    assert [s.rel for s in first.skipped] == sorted(s.rel for s in first.skipped)
    assert skips(first) == {"dangling.py": "broken_symlink", "huge.txt": "too_large"}
    assert "sub/special.log" in [f.rel for f in first.files]


def test_stat_file_agrees_with_walk_project(tmp_path: Path) -> None:
    _mixed_tree(tmp_path)
    rules = IgnoreRules(tmp_path)
    result = walk(tmp_path, max_file_size=1024, rules=rules)
    expected: dict[str, WalkedFile | SkippedFile] = {f.rel: f for f in result.files}
    expected.update({s.rel: s for s in result.skipped})

    every_path = [
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*")  # does not follow dirlink
    ] + ["dirlink/zeta.py", "does/not/exist.py"]
    assert set(expected) < set(every_path)
    fresh = IgnoreRules(tmp_path)
    for rel in every_path:
        for r in (rules, fresh):  # warm and cold caches agree
            assert stat_file(tmp_path, rel, max_file_size=1024, rules=r) == expected.get(rel), rel


# --------------------------------------------------------------- invalidate


def test_invalidate_after_editing_a_gitignore(tmp_path: Path) -> None:
    write(tmp_path, "sub/.gitignore", "*.gen\n")
    write(tmp_path, "sub/a.gen")
    write(tmp_path, "sub/b.py")
    rules = IgnoreRules(tmp_path)
    assert rels(tmp_path, rules=rules) == ["sub/.gitignore", "sub/b.py"]

    write(tmp_path, "sub/.gitignore", "*.py\n")
    # Rules are cached per directory, so the edit is not seen yet ...
    assert rules.is_ignored("sub/a.gen", is_dir=False)
    # ... until the watcher reports it.
    assert rules.notify_changed("sub/.gitignore") is True
    assert rels(tmp_path, rules=rules) == ["sub/.gitignore", "sub/a.gen"]

    (tmp_path / "sub" / ".gitignore").unlink()
    rules.invalidate("sub")
    assert rels(tmp_path, rules=rules) == ["sub/a.gen", "sub/b.py"]

    write(tmp_path, ".cidxignore", "sub/\n")
    assert rules.notify_changed("sub/b.py") is False
    assert rules.notify_changed(".cidxignore") is True
    assert rels(tmp_path, rules=rules) == [".cidxignore"]
    assert rules.is_ignored("sub/b.py", is_dir=False)


def test_invalidate_when_a_directory_becomes_a_virtualenv(tmp_path: Path) -> None:
    write(tmp_path, "tools/x.py")
    rules = IgnoreRules(tmp_path)
    assert not rules.is_ignored("tools/x.py", is_dir=False)
    write(tmp_path, "tools/pyvenv.cfg", "home = /usr\n")
    assert rules.notify_changed("tools/pyvenv.cfg")
    assert rules.is_ignored("tools/x.py", is_dir=False)


def test_is_ignored_checks_ancestors_and_normalizes(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "gen/\n")
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored("gen", is_dir=True)
    assert rules.is_ignored("gen/deep/x.py", is_dir=False)
    assert rules.is_ignored("./node_modules/a/b.js", is_dir=False)
    assert not rules.is_ignored("src/gen", is_dir=False)  # gen/ matches directories only
    assert not rules.is_ignored("", is_dir=True)


# -------------------------------------------------------------- performance


def test_walk_of_5000_files_is_fast(tmp_path: Path) -> None:
    """Not a timing assertion (machines differ); prints the figures."""
    write(
        tmp_path,
        ".gitignore",
        "\n".join(["*.log", "*.tmp", "/build/", "coverage.xml", "*.egg", "!keep.log"] * 5),
    )
    for d in range(100):
        pkg = tmp_path / f"pkg{d // 10}" / f"mod{d}"
        pkg.mkdir(parents=True)
        if d % 10 == 0:
            (pkg / ".gitignore").write_text("*.cache\n!important.cache\n")
        for f in range(50):
            (pkg / f"file{f}.py").write_text("x")
    rules = IgnoreRules(tmp_path)
    t0 = time.perf_counter()
    cold = walk(tmp_path, rules=rules)
    t1 = time.perf_counter()
    warm = walk(tmp_path, rules=rules)
    t2 = time.perf_counter()
    assert len(cold.files) == 5011 and cold == warm
    print(
        f"\nwalk of {len(cold.files)} files in 111 directories: "
        f"cold {1000 * (t1 - t0):.1f} ms ({1e6 * (t1 - t0) / len(cold.files):.1f} µs/file), "
        f"warm rules {1000 * (t2 - t1):.1f} ms ({1e6 * (t2 - t1) / len(cold.files):.1f} µs/file)"
    )
