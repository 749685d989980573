"""The project walker: symlinks, unreadable and special files, sizes, determinism and
speed, on real files in temporary trees. Ignore rules are in `test_ignore.py`."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cidx.ignore import (
    IgnoreRules,
)
from cidx.mounts import MountTypes
from cidx.walk import (
    FileCount,
    SkippedFile,
    WalkedFile,
    count_files,
    stat_file,
    walk_project,
)
from tests.walk_kit import MB, rels, skips, walk, write

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
            "2.5 MiB is over the 1.0 MiB limit (cidx init --max-file-size).",
        )
    ]


def test_fifo_and_socket_are_never_opened_and_reported(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")  # opening it for reading would block forever
    sock_dir = Path(tempfile.mkdtemp(prefix="cidx-sock-"))  # AF_UNIX paths are short
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(sock_dir / "s"))
        try:
            write(sock_dir, "a.py")
            result = walk(sock_dir)
            assert [f.rel for f in result.files] == ["a.py"]
            assert result.skipped == [
                SkippedFile("s", "special_file", "It is a socket, which is never read.")
            ]
        finally:
            sock.close()
    finally:
        shutil.rmtree(sock_dir)
    write(tmp_path, "a.py")
    result = walk(tmp_path)
    assert [f.rel for f in result.files] == ["a.py"]
    assert result.skipped == [
        SkippedFile("pipe", "special_file", "It is a FIFO (named pipe), which is never read.")
    ]


def test_device_node_is_reported_and_never_opened(tmp_path: Path) -> None:
    try:
        # The numbers of /dev/null: harmless even if something did open it.
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("Creating a device node needs CAP_MKNOD (root), which this run lacks.")
    (tmp_path / "link").symlink_to(tmp_path / "null")
    result = walk(tmp_path)
    assert result.files == []
    assert skips(result) == {"link": "special_file", "null": "special_file"}
    assert "a character device" in result.skipped[0].detail
    rules = IgnoreRules(tmp_path)
    for rel in ("null", "link"):
        one = stat_file(tmp_path, rel, max_file_size=MB, rules=rules)
        assert isinstance(one, SkippedFile) and one.reason == "special_file"


class _OnlyTheseAtTheTop(IgnoreRules):
    """Rules that keep only a few named top-level folders (and all below them)."""

    def __init__(self, root: Path, keep: set[str]) -> None:
        super().__init__(root)
        self.keep = keep

    def ignores_entry(self, parent: str, name: str, is_dir: bool) -> bool:
        return not parent and name not in self.keep


@pytest.mark.timeout(60)
def test_pseudo_filesystems_are_never_entered() -> None:
    # The real ones of this machine, reached as a project at `/` would reach
    # them; the rules keep the walk out of everything else at the top.
    mounted = {
        name
        for name, fstype in (("proc", "proc"), ("sys", "sysfs"), ("dev", "devtmpfs"))
        if MountTypes().pseudo(os.stat(f"/{name}").st_dev, f"/{name}") == fstype
    }
    if not mounted:
        pytest.skip("Neither /proc, /sys nor a devtmpfs /dev is mounted here.")
    result = walk_project(Path("/"), max_file_size=MB, rules=_OnlyTheseAtTheTop(Path("/"), mounted))
    assert result.files == []
    pseudo = {s.rel: s for s in result.skipped}
    assert set(pseudo) == mounted
    assert all(s.reason == "pseudo_filesystem" for s in pseudo.values())
    if "proc" in pseudo:
        assert pseudo["proc"].detail.startswith("A proc filesystem is mounted here")
        # A walk that starts inside one, or a watcher's single path, agrees.
        inside = walk_project(Path("/"), max_file_size=MB, start="proc/sys")
        assert [s.reason for s in inside.skipped] == ["pseudo_filesystem"] and not inside.files
        rules = IgnoreRules(Path("/"))
        assert stat_file(Path("/"), "proc/self/status", max_file_size=MB, rules=rules) is None
    # A project whose root is itself a pseudo filesystem indexes nothing.
    at_root = walk(Path("/" + sorted(mounted)[0]))
    assert at_root.files == [] and [s.reason for s in at_root.skipped] == ["pseudo_filesystem"]


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
    assert skips(first) == {
        "dangling.py": "broken_symlink",
        "fifo": "special_file",
        "huge.txt": "too_large",
    }
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


# -------------------------------------------------------------- performance


def test_walk_of_5000_files_with_cold_and_warm_rules_agrees(tmp_path: Path) -> None:
    """Speed is measured in benchmarks/, not here; this checks the result."""
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
    cold = walk(tmp_path, rules=rules)
    warm = walk(tmp_path, rules=rules)
    assert len(cold.files) == 5011 and cold == warm


def test_counting_stops_soon_after_the_limit(tmp_path: Path) -> None:
    for d in range(20):
        for f in range(10):
            write(tmp_path, f"d{d:02d}/f{f}.py")
    assert count_files(tmp_path, max_file_size=MB, limit=1000) == FileCount(tmp_path, 200, 1000)
    small = count_files(tmp_path, max_file_size=MB, limit=200)
    assert small.files == 200 and not small.over_limit
    over = count_files(tmp_path, max_file_size=MB, limit=25)
    # Checked per directory: it stops within one directory's worth past it.
    assert over.over_limit and 25 < over.files <= 35
    partial = walk_project(tmp_path, max_file_size=MB, stop_after=25)
    assert partial.stopped_early and len(partial.files) == over.files
    assert not walk(tmp_path).stopped_early


def test_auto_index_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from cidx.errors import UsageError
    from cidx.walk import AUTO_INDEX_MAX_FILES, auto_index_limit

    monkeypatch.delenv("CIDX_MAX_AUTO_FILES", raising=False)
    assert auto_index_limit() == AUTO_INDEX_MAX_FILES == 100_000
    monkeypatch.setenv("CIDX_MAX_AUTO_FILES", "12")
    assert auto_index_limit() == 12
    monkeypatch.setenv("CIDX_MAX_AUTO_FILES", "many")
    with pytest.raises(UsageError, match="CIDX_MAX_AUTO_FILES='many' is not a number"):
        auto_index_limit()
