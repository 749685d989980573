"""Every file a sync sees is accounted for, and nothing it must not touch is touched.

Through the real CLI: a project holding every kind of file (empty, binary,
too large, minified, symbolic-link loops, a broken link, a FIFO, a device
node, an undecodable name, invalid UTF-8) gets one account whose counts add
up in `--json`, in the human summary and in `cidx status`; an unreadable
file is reported on every sync and never pending; pseudo filesystems
mounted inside a project are never entered; a first index of a very large
tree waits for an explicit `cidx init`.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cidx.indexer._files import Gone, prepare_file
from cidx.messages import IndexSummary
from cidx.walk import WalkedFile
from tests.conftest import CliResult, cidx_cmd, run_cidx, write_files
from tests.helpers import opened

BUNDLE = ";".join(f"function f{i}(a){{return a+{i}}}" for i in range(3000))


def _account(summary: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (
        summary["files_scanned"],
        summary["files_indexed"],
        summary["files_empty"],
        summary["files_skipped"],
        summary["files_failed"],
    )


def _assert_adds_up(summary: dict[str, Any]) -> None:
    scanned, indexed, empty, skipped, failed = _account(summary)
    assert scanned == indexed + empty + skipped + failed, summary
    assert skipped == len(summary["skipped"]) and failed == len(summary["failed"]), summary
    changes = summary["files_added"] + summary["files_modified"] + summary["files_unchanged"]
    assert changes == indexed + empty, summary


_LINE = re.compile(
    r"(?P<scanned>[\d,]+) files scanned: (?P<indexed>[\d,]+) indexed, (?P<empty>[\d,]+) empty, "
    r"(?P<skipped>[\d,]+) skipped, (?P<failed>[\d,]+) failed; (?P<added>[\d,]+) added, "
)


def _line_account(text: str) -> tuple[int, ...]:
    match = _LINE.search(text)
    assert match, text
    return tuple(
        int(match[k].replace(",", "")) for k in ("scanned", "indexed", "empty", "skipped", "failed")
    )


@pytest.fixture
def every_kind(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A project with one file of every kind, and the reason each non-indexed one gets."""
    root = tmp_path / "proj"
    write_files(
        root,
        {
            "src/app.py": "def handle_upload(request):\n    return request.body\n",
            "src/util.py": "def slugify(text):\n    return text.lower().replace(' ', '-')\n",
            "legacy.py": "def caf\xe9():\n    return 'na\xefve'\n".encode("latin-1"),
            "empty.py": "",
            "blank.txt": "  \n\n\t\n",
            "data/blob.dat": b"\x00\x01\x02binary" * 10,
            "big.txt": "x" * (1024 * 1024 + 1),
            "web/bundle.js": BUNDLE,
        },
    )
    (root / "loop_a").symlink_to("loop_b")
    (root / "loop_b").symlink_to("loop_a")
    (root / "dangling.py").symlink_to("missing-target.py")
    os.mkfifo(root / "pipe")
    expected = {
        "data/blob.dat": "binary",
        "big.txt": "too_large",
        "web/bundle.js": "minified",
        "loop_a": "symlink_loop",
        "loop_b": "symlink_loop",
        "dangling.py": "broken_symlink",
        "pipe": "special_file",
    }
    try:
        os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        expected["null"] = "special_file"
    except PermissionError:
        pass  # not root: the FIFO stands for every special file
    try:
        (root / os.fsdecode(b"bad\xff.py")).write_text("x = 1\n")
        expected["bad\\xff.py"] = "undecodable_name"
    except (OSError, UnicodeEncodeError):
        pass  # a file system that refuses such names
    return root, expected


@pytest.mark.timeout(300)
def test_every_file_is_accounted_for_and_the_counts_add_up(
    every_kind: tuple[Path, dict[str, str]],
) -> None:
    root, expected = every_kind
    first = run_cidx(["index", "--json"], root).json()
    _assert_adds_up(first)
    assert {i["path"]: i["reason"] for i in first["skipped"]} == expected
    assert first["failed"] == []
    # app.py, util.py and legacy.py (indexed with a warning); two empty files.
    assert (first["files_indexed"], first["files_empty"]) == (3, 2)
    assert first["files_scanned"] == 5 + len(expected)
    assert first["files_added"] == 5  # the files in the index, empty ones too
    assert [(w["path"], w["reason"]) for w in first["warnings"]] == [("legacy.py", "invalid_utf8")]
    minified = next(i for i in first["skipped"] if i["reason"] == "minified")
    assert "lines over 3,000 characters" in minified["detail"]

    # The same account for a person: the summary line, and every skipped
    # file by name except the common, quiet kinds.
    human = run_cidx(["index", "--clear"], root).stdout
    assert _line_account(human) == _account(first)
    by_reason = next(line for line in human.splitlines() if line.startswith("  skipped: "))
    assert "2 symlink_loop" in by_reason and "1 minified" in by_reason
    for path, reason in expected.items():
        listed = f"{reason}: {path} — " in human
        assert listed == (reason not in ("binary", "too_large")), (path, human)
    verbose = run_cidx(["index", "--verbose"], root).stdout
    assert "binary: data/blob.dat — " in verbose and "too_large: big.txt — " in verbose

    # Nothing changed: the same account, all of it unchanged.
    again = run_cidx(["index", "--json"], root).json()
    assert _account(again) == _account(first)
    assert again["files_unchanged"] == 5 and again["files_added"] == 0
    _assert_adds_up(again)

    # Status tells the same story without reading a file.
    status = run_cidx(["status", "--json"], root).json()
    assert (
        status["files"],
        status["files_empty"],
        status["files_skipped"],
        status["files_failed"],
    ) == _account(first)[1:]
    assert status["pending"] == {"added": 0, "modified": 0, "deleted": 0}
    human_status = run_cidx(["status"], root).stdout
    assert f"3 indexed, 2 empty, {len(expected)} skipped, 0 failed" in human_status


def test_a_file_that_leaves_the_index_is_counted_once(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, {"a.py": "def alpha():\n    return 1\n", "b.js": "let b = 1;\n"})
    run_cidx(["index"], root)
    (root / "b.js").write_text(BUNDLE)  # an indexed file becomes a bundle
    (root / "a.py").unlink()
    summary = run_cidx(["index", "--json"], root).json()
    _assert_adds_up(summary)
    assert (summary["files_deleted"], summary["files_modified"]) == (2, 0)
    assert [i["reason"] for i in summary["skipped"]] == ["minified"]
    assert run_cidx(["status", "--json"], root).json()["files"] == 0
    (root / "b.js").write_text("let b = 2;\n")  # and back
    back = run_cidx(["index", "--json"], root).json()
    assert (back["files_added"], back["files_indexed"], back["files_skipped"]) == (1, 1, 0)


# ------------------------------------------------------ special files, races


@pytest.mark.timeout(60)
def test_a_path_swapped_for_a_fifo_or_device_after_the_walk_is_never_read(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    write_files(root, {"keep.py": "x = 1\n", "swap.py": "def gone():\n    pass\n"})
    run_cidx(["index"], root)
    with opened(root) as engine:
        old = engine.manifest.files()["swap.py"]
    walked = WalkedFile("swap.py", 1, 1)
    (root / "swap.py").unlink()
    os.mkfifo(root / "swap.py")  # opening it without O_NONBLOCK would block
    summary = IndexSummary(files_scanned=1)
    assert prepare_file(root, walked, old, False, summary) == Gone("swap.py")
    assert [(i.path, i.reason) for i in summary.skipped] == [("swap.py", "special_file")]
    assert "FIFO" in summary.skipped[0].detail
    # The next real sync agrees: the entry goes, the FIFO is reported.
    after = run_cidx(["index", "--json"], root).json()
    assert after["files_deleted"] == 1
    with opened(root) as engine:
        assert "swap.py" not in engine.manifest.files()
    try:
        (root / "swap.py").unlink()
        os.mknod(root / "swap.py", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        return  # not root: the FIFO case stands for devices
    summary = IndexSummary(files_scanned=1)
    assert prepare_file(root, walked, None, False, summary) is None
    assert "a character device" in summary.skipped[0].detail


# ---------------------------------------------------------- unreadable file


def _unprivileged() -> list[str]:
    """A command prefix that runs a process as a user permission bits apply to."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("As root, a mode-000 file is readable; setpriv is needed to drop to nobody.")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


@pytest.fixture
def shared_root() -> Iterator[Path]:
    # Outside pytest's 0700 temporary folder, which another user cannot enter.
    base = Path(tempfile.mkdtemp(prefix="cidx-account-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run_as(prefix: list[str], args: list[str], cwd: Path, home: Path) -> CliResult:
    proc = subprocess.run(
        [*prefix, *cidx_cmd(), *args],
        cwd=cwd,
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = CliResult(proc)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return result


def test_an_unreadable_file_is_reported_on_every_sync_and_is_never_pending(
    shared_root: Path,
) -> None:
    prefix = _unprivileged()
    root, home = shared_root / "proj", shared_root / "home"
    write_files(root, {"ok.py": "def fine():\n    return 1\n", "secret.py": "TOKEN = 'x'\n"})
    home.mkdir()
    if prefix:
        for path in [root, home, *root.rglob("*"), *home.rglob("*")]:
            os.chown(path, 65534, 65534)
    (root / "secret.py").chmod(0)

    for _ in range(2):
        summary = _run_as(prefix, ["index", "--json"], root, home).json()
        _assert_adds_up(summary)
        assert [(i["path"], i["reason"]) for i in summary["failed"]] == [
            ("secret.py", "unreadable")
        ]
        assert "Permission denied" in summary["failed"][0]["detail"]
        assert summary["files_added"] in (0, 1)  # ok.py, the first time only
        status = _run_as(prefix, ["status", "--json"], root, home).json()
        assert status["pending"] == {"added": 0, "modified": 0, "deleted": 0}
        assert (status["files"], status["files_failed"]) == (1, 1)
    human = _run_as(prefix, ["index"], root, home).stdout
    assert "1 failed" in human and "unreadable: secret.py — cannot read" in human

    # Readable again (a chmod changes no mtime): the next sync indexes it.
    (root / "secret.py").chmod(0o644)
    status = _run_as(prefix, ["status", "--json"], root, home).json()
    assert status["pending"]["added"] == 1 and status["files_failed"] == 0
    summary = _run_as(prefix, ["index", "--json"], root, home).json()
    assert (summary["files_added"], summary["files_failed"]) == (1, 0)


# ------------------------------------------------------- pseudo filesystems


def test_pseudo_filesystems_mounted_in_a_project_are_never_entered(tmp_path: Path) -> None:
    unshare, mount = shutil.which("unshare"), shutil.which("mount")
    if os.geteuid() != 0 or unshare is None or mount is None:
        pytest.skip("Mounting needs root and unshare(1), to keep the mounts private.")
    root = tmp_path / "proj"
    write_files(root, {"app.py": "def main():\n    return 0\n"})
    for folder in ("kernel", "scratch"):
        (root / folder).mkdir()
    # In a mount namespace of its own, so nothing outlives the command: a
    # proc filesystem (never entered) and a tmpfs (an ordinary one: walked).
    script = (
        f"{mount} -t proc proc kernel && {mount} -t tmpfs tmpfs scratch && "
        "printf 'def scratch_note():\\n    return 1\\n' > scratch/note.py && "
        f'exec "$@"'
    )
    command = [*cidx_cmd(), "index", "--json"]
    proc = subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", *command],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0 and "mount" in proc.stderr and "denied" in proc.stderr.lower():
        pytest.skip(f"This machine does not allow the mounts: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    summary = CliResult(proc).json()
    _assert_adds_up(summary)
    assert [(i["path"], i["reason"]) for i in summary["skipped"]] == [
        ("kernel", "pseudo_filesystem")
    ]
    assert "A proc filesystem is mounted here" in summary["skipped"][0]["detail"]
    assert summary["files_indexed"] == 2  # app.py and scratch/note.py
    assert not any((root / "kernel").iterdir())  # the mount is gone with its namespace


# ------------------------------------------------------------ large trees


def test_a_first_index_of_a_large_tree_waits_for_an_explicit_init(tmp_path: Path) -> None:
    root = tmp_path / "big"
    write_files(root, {f"pkg{i % 3}/m{i:02d}.py": f"X_{i} = {i}\n" for i in range(12)})
    small = {"CIDX_MAX_AUTO_FILES": "10"}
    for args in (["query", "anything"], ["index"]):
        refused = run_cidx(args, root, env=small, check=False)
        assert refused.returncode == 2, refused.stderr
        assert (
            f"This would index more than 10 files under {root}; run `cidx init` there "
            "explicitly to index it anyway." in refused.stderr
        )
        assert "Traceback" not in refused.stderr
        assert not (root / ".code-indexer").exists()  # nothing written, not even a lock
    # The advised step works, and the index is then kept up to date as usual.
    run_cidx(["init"], root, env=small)
    summary = run_cidx(["index", "--json"], root, env=small).json()
    assert summary["files_indexed"] == 12
    found = run_cidx(["query", "X_7", "--json", "-n", "1"], root, env=small).json()
    assert found["results"][0]["path"] == "pkg1/m07.py"
    # At or under the limit nothing is asked.
    other = tmp_path / "small"
    write_files(other, {f"m{i}.py": f"Y_{i} = {i}\n" for i in range(10)})
    assert run_cidx(["index", "--json"], other, env=small).json()["files_indexed"] == 10
