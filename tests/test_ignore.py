"""Ignore rules (.gitignore, .git/info/exclude, .cidxignore, default excludes), checked
against git itself, on real files in temporary trees."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cidx.ignore import (
    DEFAULT_EXCLUDED_DIRS,
    DEFAULT_EXCLUDED_FILES,
    HARD_EXCLUDED_NAMES,
    IgnoreRules,
)
from tests.walk_kit import rels, walk, write

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
    # Wildmatch corners: bracket expressions, escapes, runs of asterisks.
    "edge/.gitignore": "\n".join(
        [
            "[!a-c]*.q",
            "[[:digit:]]x.r",
            "\\[lit].s",
            "esc\\ ",
            "unclosed[.t",
            "a**b.u",
            "q?.v",
            "deep/**/z.w",
            "/**/anchored_any.y",
            "[]]br.z",
            "[z-a]rev.k",
            "[[:nope:]]cls.k",
            "\\!bang.txt",
            "x[/]y",
            "",
        ]
    ),
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
    "edge/a1.q",
    "edge/d1.q",
    "edge/5x.r",
    "edge/ax.r",
    "edge/[lit].s",
    "edge/l.s",
    "edge/esc ",
    "edge/esc",
    "edge/unclosed[.t",
    "edge/aXYb.u",
    "edge/ab.u",
    "edge/q1.v",
    "edge/q12.v",
    "edge/deep/z.w",
    "edge/deep/a/b/z.w",
    "edge/anchored_any.y",
    "edge/m/anchored_any.y",
    "edge/]br.z",
    "edge/xbr.z",
    "edge/rrev.k",
    "edge/1cls.k",
    "edge/!bang.txt",
    "edge/x/y",
]


def test_agrees_with_git_on_which_files_are_ignored(tmp_path: Path) -> None:
    # git is the oracle here: a machine without it must fail, not skip.
    assert shutil.which("git"), "git must be installed to run the test suite."
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
