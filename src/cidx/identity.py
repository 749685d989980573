"""A project's identity, and the collection names derived from it.

`project_identity` is the one function that says who a project is:

1. `project_id` set in the project's config, when the user chose one;
2. else its git remote — `origin`, else `upstream`, else the first one —
   normalised so that every way of writing the same repository gives the
   same id (`https://github.com/Org/Repo.git`, `git@github.com:Org/Repo`,
   `ssh://git@GitHub.com/Org/Repo/` are all `github.com/Org/Repo`):
   scheme, user info (and so any credentials), port and `.git` are
   dropped, the scp form `host:path` becomes `host/path`, the host is
   lowercased;
3. else `path-<hash>` of the project's canonical absolute path.

Credentials in a remote URL never leave `normalize_remote`: they are not
part of the id, and nothing else here keeps the raw URL.

`collection_name` turns an id and a model into a name valid as a folder on
Linux, macOS and Windows and as a Qdrant collection, in one of the naming
schemes (the config's `naming_scheme`): "readable", a lowercase slug of the
id plus a hash of the exact id, so ids that slug alike (`my-repo`,
`my_repo`, `My-Repo`) still get different names; or "hashed", the hash
alone, for stores others can list (a Qdrant server, the global store),
where a name should not tell which repository it holds.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "NAMING_SCHEMES",
    "Identity",
    "NamingScheme",
    "collection_name",
    "git_remotes",
    "model_slug",
    "normalize_remote",
    "path_id",
    "project_identity",
]

Source = Literal["config", "git-remote", "path"]
NamingScheme = Literal["readable", "hashed"]
NAMING_SCHEMES: tuple[NamingScheme, ...] = ("readable", "hashed")

# Longest slug kept in a collection name: names stay well under the 255
# bytes folders and Qdrant allow, and readable in a listing.
_SLUG_MAX = 40
_SCP = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>(?!//).*)$")


@dataclass(frozen=True)
class Identity:
    """Who a project is, and how that was decided."""

    id: str
    source: Source
    remote: str | None = None  # the remote's name when `source` is "git-remote"


def normalize_remote(url: str) -> str | None:
    """`url` as a credential-free repository id, or None if it names none.

    `https://user:token@GitHub.com:443/Org/Repo.git/` → `github.com/Org/Repo`;
    `git@github.com:Org/Repo.git` → `github.com/Org/Repo`; a local path or
    `file://` URL → `file/<absolute path>`.
    """
    text = url.strip()
    if not text:
        return None
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme == "file":
            return _local(parts.path)
        host = (parts.hostname or "").lower()
        path = parts.path
    elif (scp := _SCP.match(text)) is not None and "/" not in scp.group("host"):
        host, path = scp.group("host").lower(), scp.group("path")
    else:
        return _local(text)
    path = path.strip("/")
    path = path.removesuffix(".git").rstrip("/")
    if not host or not path:
        return None
    return f"{host}/{path}"


def _local(path: str) -> str | None:
    if not path:
        return None
    clean = os.path.normpath(path).removesuffix(".git").rstrip("/")
    return f"file/{clean.lstrip('/')}" if clean else None


def path_id(root: Path) -> str:
    """The id of a project without a remote: a hash of its canonical path."""
    canonical = os.path.realpath(root)
    return "path-" + hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def git_remotes(root: Path) -> dict[str, str]:
    """The remotes of the git repository at `root`: name → URL, in file order.

    Read from the repository's config file (worktrees and submodules point
    to it through a `.git` file); no `git` process is started.
    """
    config = _git_config_file(root)
    if config is None:
        return {}
    try:
        text = config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    remotes: dict[str, str] = {}
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            match = re.match(r'\[\s*remote\s+"((?:[^"\\]|\\.)*)"\s*\]', line)
            section = match.group(1) if match else None
            continue
        if section is None:
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "url" and section not in remotes:
            remotes[section] = _unquote(value.strip())
    return remotes


def _unquote(value: str) -> str:
    # A value may be quoted and carry a trailing comment after the quotes.
    if value.startswith('"'):
        end = value.find('"', 1)
        return value[1:end] if end > 0 else value[1:]
    return re.split(r"\s[#;]", value, maxsplit=1)[0].strip()


def _git_config_file(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git / "config"
    if not dot_git.is_file():
        return None
    try:
        pointer = dot_git.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not pointer.startswith("gitdir:"):
        return None
    git_dir = Path(pointer.removeprefix("gitdir:").strip())
    if not git_dir.is_absolute():
        git_dir = (root / git_dir).resolve()
    common = git_dir / "commondir"  # a worktree's config is its main repository's
    if common.is_file():
        try:
            target = Path(common.read_text(encoding="utf-8").strip())
        except OSError:
            return None
        git_dir = target if target.is_absolute() else (git_dir / target).resolve()
    return git_dir / "config"


def project_identity(root: Path, configured: str | None = None) -> Identity:
    """The project's id: the configured one, else its git remote, else its path."""
    if configured:
        return Identity(configured, "config")
    remotes = git_remotes(root)
    for name in ("origin", "upstream", *remotes):
        url = remotes.get(name)
        normalized = normalize_remote(url) if url else None
        if normalized is not None:
            return Identity(normalized, "git-remote", name)
    return Identity(path_id(root), "path")


def model_slug(model_id: str) -> str:
    """The part of a collection name that names the model (its last part)."""
    return _slug(model_id, limit=None)


def _slug(text: str, limit: int | None = _SLUG_MAX) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if limit is not None:
        slug = slug[-limit:].lstrip("-")
    return slug or "project"


def collection_name(
    project_id: str,
    model_id: str,
    *,
    place: Path | None = None,
    scheme: NamingScheme = "readable",
) -> str:
    """A collection name for a project and a model, in the naming `scheme`.

    `place`, the project's root, is given for stores shared by several
    projects (the per-user global store): two clones of one repository there
    must not share a collection.
    """
    exact = project_id if place is None else f"{project_id}\0{os.path.realpath(place)}"
    digest = hashlib.sha256(exact.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    if scheme == "hashed":
        return f"cidx-{digest}-{model_slug(model_id)}"
    return f"cidx-{_slug(project_id)}-{digest}-{model_slug(model_id)}"
