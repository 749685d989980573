"""`cidx serve --http` and `cidx mcp` while the daemon runs: two projects, both
answered by the one daemon process, through real HTTP and the real MCP stdio
protocol. The serving processes never load the model nor map a shard."""

from __future__ import annotations

import os
from pathlib import Path

from cidx.owner.lock import read_owner
from cidx.project import ProjectPaths
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.helpers import generated_module, until
from tests.http_kit import start_serve
from tests.test_daemon import Daemon, daemon  # noqa: F401 (the fixture)
from tests.test_mcp import eventually, mcp_server, run


def _projects(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    write_files(first, DEMO_PROJECT)
    write_files(second, {f"lib/g{i}.py": generated_module(i) for i in range(3)})
    return first, second


def _engine_free(pid: int) -> None:
    """The process `pid` has no model runtime loaded and no index file mapped."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "onnxruntime" not in maps
    assert "qdrant-data" not in maps and "qdrant_edge" not in maps


def _owner_pid(root: Path) -> int | None:
    owner = read_owner(ProjectPaths(root))
    return owner.pid if owner is not None else None


def test_serve_answers_http_through_the_daemon(daemon: Daemon, tmp_path: Path) -> None:  # noqa: F811
    first, second = _projects(tmp_path)
    pid = daemon.start()["pid"]
    home = Path(os.environ["HOME"])
    served = [start_serve(root, home, "--http", "127.0.0.1:0") for root in (first, second)]
    try:
        for root, server in zip((first, second), served, strict=True):
            assert _owner_pid(root) == pid
            assert daemon.projects()[str(root)]["state"] == "watched"
            health = server.get("/healthz")
            assert health.status == 200 and health.json()["pid"] == pid
            _engine_free(server.proc.pid)
        top = served[0].get("/search", {"q": "retry failed uploads"}).json()
        assert top["root"] == str(first)
        assert top["results"][0]["path"] == "src/uploads/retry.py"
        other = served[1].get("/search", {"q": "retry failed uploads", "limit": 20}).json()
        assert other["root"] == str(second)
        assert {r["path"] for r in other["results"]} <= {f"lib/g{i}.py" for i in range(3)}
        # An edit is found: the daemon keeps the project live.
        (first / "src/uploads/retry.py").write_text(
            "def rotate_signing_keys(vault):\n    return vault.rotate()\n"
        )

        def edit_seen() -> bool:
            found = served[0].get("/search", {"q": "rotate signing keys", "limit": 1}).json()
            return bool(found["results"]) and found["results"][0]["symbol"] == "rotate_signing_keys"

        until(edit_seen, "the daemon to index the edit")
        # The daemon's instruments, with the searches it answered.
        metrics = served[0].get("/metrics").body.decode()
        queries = next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("cidx_queries_total ")
        )
        assert queries >= 2 and "cidx_files 4.0" in metrics
    finally:
        codes = [server.stop() for server in served]
    assert codes == [0, 0], [server.log() for server in served]
    for root, server in zip((first, second), served, strict=True):
        assert "Traceback" not in server.log()
        assert not server.info_file.exists()
        # Watched only while served; the daemon still holds it until idle.
        assert daemon.projects()[str(root)]["watched"] is False


def test_mcp_answers_through_the_daemon(daemon: Daemon, tmp_path: Path) -> None:  # noqa: F811
    first, second = _projects(tmp_path)
    pid = daemon.start()["pid"]

    async def main() -> None:
        for root, query, expected in (
            (first, "retry failed uploads", "src/uploads/retry.py"),
            (second, "module 1", "lib/g1.py"),
        ):
            async with mcp_server(root) as server:
                found = await server.ok("search", {"query": query})
                assert found["results"][0]["path"] == expected
                status = await server.ok("status")
                assert status["owner"]["pid"] == pid and not status["owner"]["this_process"]
                _engine_free(_mcp_pid(root))
            assert _owner_pid(root) == pid

        async def both_held() -> bool:
            held = daemon.projects()
            return str(first) in held and str(second) in held

        await eventually(both_held, "the daemon to hold both projects")

    run(main)
    assert run_cidx(["status", "--json"], first).json()["owner_pid"] == pid


def _mcp_pid(root: Path) -> int:
    """The `cidx mcp --project ROOT` process this test started."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mcp" in args and os.fsencode(root) in args and int(entry.name) != os.getpid():
            return int(entry.name)
    raise AssertionError(f"no cidx mcp process for {root}")
