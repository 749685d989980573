"""What a new user can trip on, through the real CLI: where cidx refuses to
index, what it never creates, waiting with a limit, Ctrl-C, odd file names,
private files, and how errors and help read."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.helpers import clean_rebuild, full_snapshot, generated_module


@pytest.fixture
def proj(project) -> Path:  # type: ignore[no-untyped-def]
    return project(DEMO_PROJECT)


# -- where cidx does not index on its own -------------------------------------------------------


def test_the_filesystem_root_and_the_home_folder_are_never_indexed_on_their_own(
    tmp_path: Path,
) -> None:
    home = Path(os.environ["HOME"])
    write_files(home, {"notes.md": "# Notes\n"})
    for where, words in ((Path("/"), "the filesystem root"), (home, "your home folder")):
        for args in (["query", "notes"], ["index"], ["init"], ["watch", "--no-wait"]):
            out = run_cidx(args, where, check=False)
            assert out.returncode == 2, (where, args, out.stderr)
            assert f"does not index {words}" in out.stderr and "Traceback" not in out.stderr
        assert not (where / ".code-indexer").exists()


def test_a_home_folder_inside_a_project_belongs_to_that_project(tmp_path: Path) -> None:
    above = tmp_path / "above"
    home = above / "home"
    write_files(above, {"tool.py": "def tool():\n    return 1\n", "home/notes.md": "# Notes\n"})
    run_cidx(["init"], above)
    out = run_cidx(["query", "tool", "--json"], home, env={"HOME": str(home)})
    assert out.json()["root"] == str(above)
    assert not (home / ".code-indexer").exists()


def test_status_never_creates_an_index(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    write_files(fresh, {"a.py": "x = 1\n"})
    out = run_cidx(["status"], fresh, check=False)
    assert out.returncode == 10 and "There is no cidx index" in out.stderr
    assert "cidx index" in out.stderr
    assert not (fresh / ".code-indexer").exists()
    # An index being created (its folder there, no config yet) is already the
    # root: status from a subfolder must not start a second one there.
    write_files(fresh, {"sub/b.py": "y = 2\n"})
    (fresh / ".code-indexer").mkdir()
    out = run_cidx(["status"], fresh / "sub", check=False)
    assert out.returncode == 10 and str(fresh) in out.stderr
    assert not (fresh / "sub" / ".code-indexer").exists()


# -- waiting -----------------------------------------------------------------------------------


def test_waiting_for_an_owner_has_a_limit_and_says_how_to_stop_it(proj: Path) -> None:
    run_cidx(["init"], proj)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from cidx.owner.lock import OwnerLock; "
            "from cidx.project import ProjectPaths; "
            "OwnerLock(ProjectPaths(Path(sys.argv[1])), 'serve').acquire(); "
            "print('held', flush=True); sys.stdin.read()",
            str(proj),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        out = run_cidx(["init", "--force", "--wait-timeout", "0.5"], proj, check=False)
        assert out.returncode == 7, out.stderr
        assert f"Waiting for `cidx serve` (pid {holder.pid})" in out.stderr
        assert f"kill {holder.pid}" in out.stderr
        assert "Gave up after waiting 0.5 s" in out.stderr and "--wait-timeout" in out.stderr
        now = run_cidx(["index", "--no-wait"], proj, check=False)
        assert now.returncode == 7 and "without --no-wait" in now.stderr
        bad = run_cidx(["index", "--wait-timeout", "-1"], proj, check=False)
        assert bad.returncode == 2 and "--wait-timeout must be" in bad.stderr
    finally:
        holder.kill()
        holder.wait()


# -- Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_during_an_index_says_the_index_is_consistent(proj: Path, tmp_path: Path) -> None:
    write_files(proj, {f"gen/m{i:02d}.py": generated_module(i) for i in range(70)})
    out = run_cidx(["index"], proj, check=False, env={"CIDX_FAILPOINT": "after_upsert:1:SIGINT"})
    assert out.returncode == 130, out.stderr
    assert "Interrupted. The index is consistent" in out.stderr
    assert "`cidx index` finishes the job" in out.stderr
    assert "Traceback" not in out.stderr
    done = run_cidx(["index", "--json"], proj).json()
    assert done["files_added"] > 0
    assert full_snapshot(proj) == clean_rebuild(proj, tmp_path)


# -- files and folders ---------------------------------------------------------------------------


def test_index_files_are_private_and_ignored_by_git(proj: Path) -> None:
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    run_cidx(["index"], proj)
    run_cidx(["status"], proj)  # a command on an existing index opens its log
    index = proj / ".code-indexer"
    assert stat.S_IMODE(index.stat().st_mode) == 0o700
    assert (index / ".gitignore").read_text().splitlines()[-1] == "*"
    for name in ("config.json", "state.db", "owner.lock", "logs/cidx.log"):
        assert stat.S_IMODE((index / name).stat().st_mode) & 0o077 == 0, name
    status = subprocess.run(
        ["git", "-C", str(proj), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".code-indexer" not in status and "src/auth/tokens.py" in status
    # An index made before folders were private is narrowed on its next use.
    index.chmod(0o755)
    run_cidx(["index"], proj)
    assert stat.S_IMODE(index.stat().st_mode) == 0o700


def test_names_with_markup_and_control_characters_print_as_they_are(tmp_path: Path) -> None:
    root = tmp_path / "odd[/]root"
    write_files(
        root,
        {
            "a[/]b.py": "def bracketed_thing():\n    return '[bold]x[/]'\n",
            "new\nline.py": "def newline_named_thing():\n    return 2\n",
            "esc\x1b[31m.py": "def escape_named_thing():\n    return 3\n",
        },
    )
    out = run_cidx(["index"], root)
    assert "Indexed: 3 files scanned" in out.stdout
    found = run_cidx(["query", "bracketed thing", "-n", "1"], root)
    assert "a[/]b.py:1-2" in found.stdout and "[bold]x[/]" in found.stdout
    named = run_cidx(["query", "newline named thing", "-n", "1", "--mode", "keyword"], root)
    assert "new\\nline.py:1-2" in named.stdout
    escaped = run_cidx(["query", "escape named thing", "-n", "1", "--mode", "keyword"], root)
    assert "esc\\x1b[31m.py:1-2" in escaped.stdout and "\x1b" not in escaped.stdout
    assert run_cidx(["query", "escape", "--json"], root).json()["root"] == str(root)
    # Errors that name the root print it as it is too.
    missing = run_cidx(["index", "nothing-here"], root, check=False)
    assert missing.returncode == 2 and str(root) in missing.stderr
    assert "Traceback" not in missing.stderr


# -- paths from a subfolder ----------------------------------------------------------------------


def test_paths_read_from_the_folder_the_command_runs_in(proj: Path) -> None:
    run_cidx(["index"], proj)
    from_src = run_cidx(["query", "verify a token signature", "-n", "1"], proj / "src")
    assert from_src.stdout.lstrip().startswith("1. auth/tokens.py:")
    from_web = run_cidx(["query", "verify a token signature", "-n", "1"], proj / "web")
    assert from_web.stdout.lstrip().startswith("1. ../src/auth/tokens.py:")
    # JSON stays root-relative and names the root once.
    answer = run_cidx(["query", "verify token", "-n", "1", "--json"], proj / "web").json()
    assert answer["root"] == str(proj)
    assert answer["results"][0]["path"] == "src/auth/tokens.py"

    def found(cwd: Path, *globs: str) -> set[str]:
        args = ["query", "function", "--json", "-n", "20"]
        for glob in globs:
            args += ["--path", glob]
        return {r["path"] for r in run_cidx(args, cwd).results()}

    # Globs are relative to the current folder, as `git grep` reads them...
    assert found(proj / "src", "*.py") == {"src/uploads/retry.py", "src/auth/tokens.py"}
    assert found(proj / "src", "auth/") == {"src/auth/tokens.py"}
    # ...unless anchored at the root with a leading slash.
    assert found(proj / "src", "/web/") == {"web/app.ts"}
    assert found(proj, "*.ts") == {"web/app.ts"}


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("rs",), {"lib.rs"}),
        (("rust",), {"lib.rs"}),
        (("golang",), {"main.go"}),
        (("GO",), {"main.go"}),
        (("py", "ts"), {"src/uploads/retry.py", "src/auth/tokens.py", "web/app.ts"}),
    ],
)
def test_languages_are_known_by_their_common_names(
    proj: Path, names: tuple[str, ...], expected: set[str]
) -> None:
    write_files(
        proj,
        {
            "lib.rs": "pub fn parse_header(input: &str) -> usize {\n    input.len()\n}\n",
            "main.go": "package main\n\nfunc ParseHeader(input string) int {\n\treturn 1\n}\n",
        },
    )
    args = ["query", "parse header function", "--json", "-n", "20"]
    for name in names:
        args += ["--lang", name]
    assert {r["path"] for r in run_cidx(args, proj).results()} == expected


# -- how errors and help read --------------------------------------------------------------------


def test_errors_have_one_style_and_help_names_values(proj: Path) -> None:
    bad = run_cidx(["query", "x", "--limit", "many"], proj, check=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "cidx query --help" in bad.stderr
    assert "╭" not in bad.stderr and "Traceback" not in bad.stderr
    unknown = run_cidx(["frobnicate"], proj, check=False)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: No such command")
    help_text = run_cidx(["query", "--help"], proj).stdout
    for shown in ("--path GLOB", "--lang LANGUAGE", "--limit N", "--wait-timeout SECONDS"):
        assert shown in help_text, shown
    for noise in ("<bool>", "list[", "<float", "╭"):
        assert noise not in help_text, noise
    watch_help = run_cidx(["watch", "--help"], proj).stdout
    assert "--rescan-interval SECONDS" in watch_help and "x>=" not in watch_help


def test_an_unexpected_failure_leaves_its_traceback_in_the_project_log(proj: Path) -> None:
    run_cidx(["init"], proj)
    out = run_cidx(["index"], proj, check=False, env={"CIDX_FAILPOINT_RAISE": "after_upsert:1"})
    log = proj / ".code-indexer" / "logs" / "cidx.log"
    assert out.returncode == 1
    assert "failed unexpectedly" in out.stderr and str(log) in out.stderr
    assert "Traceback" not in out.stderr
    text = log.read_text()
    assert "Traceback" in text and "injected failure at after_upsert" in text
    # The next run repairs what the failure left.
    run_cidx(["index"], proj)


def test_piped_progress_prints_lines(proj: Path) -> None:
    write_files(proj, {f"gen/m{i:02d}.py": generated_module(i) for i in range(40)})
    out = run_cidx(["index"], proj, env={"CIDX_PROGRESS_SECONDS": "0"})
    lines = [line for line in out.stderr.splitlines() if line.startswith("Indexing: ")]
    assert lines and "files" in lines[-1] and "chunks/s" in lines[-1]


def test_an_owner_that_keeps_vanishing_is_an_owner_error(tmp_path: Path) -> None:
    from cidx import service
    from cidx.errors import OwnerError
    from cidx.owner.client import OwnerUnavailable
    from cidx.project import ProjectPaths

    calls = 0

    def vanish() -> None:
        nonlocal calls
        calls += 1
        raise OwnerUnavailable("gone")

    with pytest.raises(OwnerError, match="stopped answering 5 times"):
        service.retrying(vanish, ProjectPaths(tmp_path))
    assert calls == service.UNAVAILABLE_ATTEMPTS


def test_sigint_to_a_watcher_stops_it_cleanly(proj: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cidx", "watch"],
        cwd=proj,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "catch-up sync" in line:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0


@pytest.mark.parametrize("command", ["query x", "clone a b"])
def test_a_deleted_working_folder_is_named_not_a_traceback(tmp_path: Path, command: str) -> None:
    script = f'mkdir gone && cd gone && rmdir ../gone && exec "{sys.executable}" -m cidx {command}'
    out = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 2 and "The current folder no longer exists" in out.stderr
    assert "Traceback" not in out.stderr
