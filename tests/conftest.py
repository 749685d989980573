"""Shared fixtures: real projects on disk, the real model, the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cidx.embedding import Embedder

if TYPE_CHECKING:
    from tests.test_watch import Watcher


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing a test does may touch the developer's home folder.
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    # Nor the developer's global store: each test has its own data folder.
    monkeypatch.setenv("CIDX_DATA_DIR", str(home / "cidx-data"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    # Nor the developer's cidx daemon, its settings, its state or its logs.
    for name in ("XDG_RUNTIME_DIR", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name in ("CIDX_STATE_DIR", "CIDX_LOG_DIR", "CIDX_CACHE_DIR", "CIDX_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CIDX_FAILPOINT", raising=False)


# A small project: Python, TypeScript and Markdown, one clear answer per query.
DEMO_PROJECT: dict[str, str | bytes] = {
    "src/uploads/retry.py": '''
        import time


        def retry_failed_uploads(queue, attempts=3):
            """Send every failed upload again, backing off between tries."""
            for item in queue.failed():
                for n in range(attempts):
                    if item.send():
                        break
                    time.sleep(2 ** n)
        ''',
    "src/auth/tokens.py": """
        import hmac


        def verify_token(token, secret):
            expected = hmac.new(secret, token.payload, "sha256").hexdigest()
            return hmac.compare_digest(expected, token.signature)
        """,
    "web/app.ts": """
        export function renderDashboard(user: User): string {
          return `<h1>Welcome ${user.name}</h1>`;
        }
        """,
    "README.md": """
        # Demo

        ## Deployment

        Run the container behind the load balancer.
        """,
}


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Callable[[dict[str, str | bytes]], Path]:
    def make(files: dict[str, str | bytes]) -> Path:
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        write_files(root, files)
        return root

    return make


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def results(self) -> Any:
        """The results of a `cidx query --json`."""
        return self.json()["results"]


def cidx_cmd() -> list[str]:
    return [sys.executable, "-m", "cidx"]


def run_cidx(
    args: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 300,
    input: str | None = None,
) -> CliResult:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [*cidx_cmd(), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
    result = CliResult(proc)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"cidx {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return result


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    """The `cidx watch` processes a test starts; any still running at its end is killed."""
    started: list[Watcher] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.stop(signal.SIGKILL)


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    return run_cidx


@pytest.fixture
def chdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    yield lambda p: monkeypatch.chdir(p)
