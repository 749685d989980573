"""A tiny HTTP client and `cidx serve` processes to point it at."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from cidx import http_api
from cidx.project import ProjectPaths
from tests.conftest import DEMO_PROJECT, cidx_cmd

# The demo project, with one more retry function and a README that mentions retries.
PROJECT: dict[str, str | bytes] = {
    **DEMO_PROJECT,
    "web/app.ts": """
        export function renderDashboard(user: User): string {
          return `<h1>Welcome ${user.name}</h1>`;
        }

        export function retryRequest(url: string, tries: number): Promise<Response> {
          return fetch(url).catch(() => retryRequest(url, tries - 1));
        }
        """,
    "README.md": """
        # Demo

        ## Deployment

        Run the container behind the load balancer; uploads retry on failure.
        """,
}

START_TIMEOUT = 90.0  # generous: two shared cores, other suites running
TOKEN = "s3cret-Token_42"


# -- a tiny HTTP client and a served project -----------------------------------


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json", self.headers
        return json.loads(self.body)


def fetch(
    url: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    parts = urlsplit(url)
    host = "127.0.0.1" if parts.hostname == "0.0.0.0" else parts.hostname
    assert host is not None and parts.port is not None
    conn = http.client.HTTPConnection(host, parts.port, timeout=60)
    try:
        target = path + ("?" + urlencode(params, doseq=True) if params else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


class Served:
    """One `cidx serve` process, where it listens and the token it wants."""

    def __init__(self, root: Path, proc: subprocess.Popen[bytes], log: Path, token: str | None):
        self.root = root
        self.paths = ProjectPaths(root)
        self.proc = proc
        self.log_path = log
        # The token given on the command line, else the one the server made
        # (read from serve.json, as clients do).
        self.token = token
        self.url = ""
        self.info: dict[str, Any] = {}

    @property
    def info_file(self) -> Path:
        return self.paths.index_dir / http_api.INFO_FILE_NAME

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Reply:
        headers = dict(kw.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return fetch(self.url, path, params, headers=headers, **kw)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.proc.poll() is None, (
                f"cidx serve exited {self.proc.returncode}:\n{self.log()}"
            )
            assert time.monotonic() < deadline, f"cidx serve never became healthy:\n{self.log()}"
            if not self.url:
                try:
                    data = json.loads(self.info_file.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    time.sleep(0.05)
                    continue
                if data.get("pid") == self.proc.pid:
                    self.info = data
                    self.url = data["url"]
                    if self.token is None:
                        self.token = data["token"]
                continue
            if self.get("/healthz").status == 200:
                return
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, as a service manager would; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"cidx serve ignored SIGTERM:\n{self.log()}") from None

    def assert_stopped_cleanly(self) -> None:
        code = self.stop()
        assert code == 0, self.log()
        assert not self.info_file.exists()
        assert not self.paths.socket_path.exists()
        assert not self.paths.owner_info.exists()
        assert "Traceback" not in self.log(), self.log()


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(home)}
    for name in (http_api.TOKEN_ENV, "CIDX_FAILPOINT"):
        env.pop(name, None)
    return env


def start_serve(
    root: Path, home: Path, *args: str, token: str | None = None, env: dict[str, str] | None = None
) -> Served:
    log = root.parent / f"serve-{root.name}.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [*cidx_cmd(), "serve", *args],
            cwd=root,
            env={**_env(home), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    served = Served(root, proc, log, token)
    try:
        served.wait_ready()
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    return served
