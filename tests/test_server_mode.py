"""`storage_mode: server` end to end: init, index, query, status, doctor, watch.

The "server" here is qdrant-client's in-process local mode behind a `local:`
URL (a testing aid, documented in docs/server.md): the real server store,
the real cidx commands in their own processes, the real bundled model. A
project indexed on it answers every query exactly as the same project
indexed in the embedded store.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from cidx.store.server import ServerStore
from cidx.store.server_settings import API_KEY_ENV, ServerSettings
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.helpers import clean_rebuild, full_snapshot, generated_module
from tests.test_watch import Watcher

QUERIES = [
    "where do we retry failed uploads",
    "verify token signature",
    "render the dashboard",
    "deployment behind a load balancer",
]


@pytest.fixture
def projects(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(a project on the server, the same project stored locally, the server's folder)."""
    on_server, local = tmp_path / "on-server", tmp_path / "local"
    for root in (on_server, local):
        write_files(root, DEMO_PROJECT)
    return on_server, local, tmp_path / "qdrant"


def _ranked(root: Path) -> list[list[tuple[str, int, float]]]:
    """The top 10 of each of QUERIES, in one process."""
    out = run_cidx(
        ["query", "--batch", "-", "--json", "--limit", "10"], root, input="\n".join(QUERIES)
    )
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["query"] for a in answers] == QUERIES
    return [
        [(r["path"], r["start_line"], round(r["score"], 4)) for r in a["results"]] for a in answers
    ]


def test_index_query_and_status_on_a_server(projects: tuple[Path, Path, Path]) -> None:
    on_server, local, folder = projects
    init = run_cidx(
        ["init", "--storage", "server", "--qdrant-url", f"local:{folder}", "--json"], on_server
    ).json()
    assert init["storage_mode"] == "server"
    config = json.loads((on_server / ".code-indexer" / "config.json").read_text())
    assert config["storage_mode"] == "server"
    assert config["server"]["url"] == f"local:{folder}"
    # Nothing of the index is kept in the project: the collection is on the server.
    assert not (on_server / ".code-indexer" / "qdrant-data").exists()

    run_cidx(["init"], local)
    for root in (on_server, local):
        run_cidx(["index"], root)

    status = run_cidx(["status", "--json"], on_server).json()
    assert status["storage_mode"] == "server"
    assert status["storage_path"] == f"local:{folder} collection {status['collection']}"
    assert status["files"] == 4 and status["points"] == status["chunks"] > 0
    assert status["pending"] == {"added": 0, "modified": 0, "deleted": 0}
    assert (folder / "collection" / status["collection"]).is_dir()

    ranked = _ranked(on_server)
    assert ranked == _ranked(local)
    assert all(ranked)
    top = run_cidx(["query", QUERIES[0], "--json"], on_server).results()[0]
    assert top["path"] == "src/uploads/retry.py"

    # A change syncs to the server like to the embedded store.
    (on_server / "src" / "auth" / "tokens.py").unlink()
    run_cidx(["index"], on_server)
    paths = {r["path"] for r in run_cidx(["query", QUERIES[1], "--json"], on_server).results()}
    assert "src/auth/tokens.py" not in paths
    assert run_cidx(["status", "--json"], on_server).json()["files"] == 3

    doctor = run_cidx(["doctor", "--json"], on_server, check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_a_lost_collection_is_rebuilt_by_the_advised_step(
    projects: tuple[Path, Path, Path],
) -> None:
    on_server, _, folder = projects
    run_cidx(["init", "--storage", "server", "--qdrant-url", f"local:{folder}"], on_server)
    run_cidx(["index"], on_server)
    collection = run_cidx(["status", "--json"], on_server).json()["collection"]
    # Someone drops the collection on the server.
    store = ServerStore.connect(ServerSettings(url=f"local:{folder}"))
    store.drop_collection(collection)
    store.close()

    doctor = run_cidx(["doctor"], on_server, check=False)
    assert doctor.returncode == 12, doctor.stdout + doctor.stderr
    assert f"local:{folder} collection {collection}" in doctor.stdout
    assert "cidx index" in doctor.stdout
    run_cidx(["index"], on_server)  # the advised step
    assert run_cidx(["doctor"], on_server, check=False).returncode == 0
    results = run_cidx(["query", QUERIES[0], "--json"], on_server).results()
    assert results[0]["path"] == "src/uploads/retry.py"


def test_the_api_key_is_never_written_or_printed(
    projects: tuple[Path, Path, Path],
) -> None:
    on_server, _, folder = projects
    key = "k-" + "9" * 30
    env = {API_KEY_ENV: key}
    out = run_cidx(
        ["init", "--storage", "server", "--qdrant-url", f"local:{folder}", "--json"],
        on_server,
        env=env,
    )
    out2 = run_cidx(["status", "--json"], on_server, env=env)
    assert key not in out.stdout + out.stderr + out2.stdout + out2.stderr
    for path in (on_server / ".code-indexer").rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path


def test_init_does_not_move_an_index_between_storages(
    projects: tuple[Path, Path, Path],
) -> None:
    _, local, folder = projects
    run_cidx(["init"], local)
    moved = run_cidx(
        ["init", "--storage", "server", "--qdrant-url", f"local:{folder}"], local, check=False
    )
    assert moved.returncode == 2
    assert "does not move an index to or from a Qdrant server" in moved.stderr
    assert f"cidx storage migrate --to server --qdrant-url local:{folder}" in moved.stderr
    advised = f"cidx init --force --storage server --qdrant-url local:{folder}"
    assert advised in moved.stderr
    # The advised step: a new, empty index on the server.
    run_cidx(advised.split()[1:], local)
    status = run_cidx(["status", "--json"], local).json()
    assert status["storage_mode"] == "server"
    assert not (local / ".code-indexer" / "qdrant-data").exists() or not any(
        (local / ".code-indexer" / "qdrant-data").iterdir()
    )


def test_watch_keeps_a_server_index_live(tmp_path: Path) -> None:
    """`cidx watch` on a server index: edits, a new file and a deletion reach
    the server, and what it holds is what a clean rebuild of the same files
    holds in the embedded store."""
    root = tmp_path / "proj"
    write_files(root, {f"src/m{i:02d}.py": generated_module(i) for i in range(6)})
    run_cidx(["init", "--storage", "server", "--qdrant-url", f"local:{tmp_path / 'q'}"], root)
    watcher = Watcher(root)
    try:
        assert watcher.status().files == 6
        (root / "src/m00.py").write_text(generated_module(100))
        write_files(root, {"src/new_module.py": "def freshly_written_function():\n    return 1\n"})
        (root / "src/m01.py").unlink()
        assert watcher.settle().files == 6
        hits = run_cidx(["query", "freshly written function", "--json", "-n", "1"], root).results()
        assert hits[0]["path"] == "src/new_module.py"
        assert watcher.stop() == 0, watcher.log.read_text()
    finally:
        if watcher.proc.poll() is None:
            watcher.stop(signal.SIGKILL)
    assert full_snapshot(root) == clean_rebuild(root, tmp_path)


def test_two_clones_never_write_one_server_collection(tmp_path: Path) -> None:
    """Clones of one repository name the same collection; a second clone is
    refused it (no cross-machine lease yet), and both advised steps work."""
    url = f"local:{tmp_path / 'q'}"
    clones = []
    for name in ("a", "b"):
        root = tmp_path / name
        write_files(root, DEMO_PROJECT)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(
            ["git", "-C", str(root), "remote", "add", "origin", "https://github.com/org/repo.git"],
            check=True,
        )
        clones.append(root)
    first, second = clones
    run_cidx(["init", "--storage", "server", "--qdrant-url", url], first)
    run_cidx(["index"], first)
    collection = run_cidx(["status", "--json"], first).json()["collection"]

    refused = run_cidx(["init", "--storage", "server", "--qdrant-url", url], second, check=False)
    assert refused.returncode == 2, refused.stderr
    assert f"The collection {collection} exists on {url} already" in refused.stderr
    assert "github.com/org/repo" in refused.stderr
    assert not (second / ".code-indexer" / "config.json").exists()
    # The first clone's index is untouched.
    assert run_cidx(["status", "--json"], first).json()["points"] > 0

    # Advised: keep the second clone's index local.
    run_cidx(["init", "--storage", "local"], second)
    assert run_cidx(["status", "--json"], second).json()["storage_mode"] == "local"
    # Or, as docs/server.md says, give it its own identity, then its own
    # collection on the server.
    config_file = second / ".code-indexer" / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "project_id": "acme/repo-clone-b"}))
    run_cidx(["init", "--force", "--storage", "server", "--qdrant-url", url], second)
    own = run_cidx(["status", "--json"], second).json()
    assert own["storage_mode"] == "server" and own["collection"] != collection

    # Advised when it is this project's own old index: replace it.
    shutil.rmtree(first / ".code-indexer")
    again = run_cidx(["init", "--storage", "server", "--qdrant-url", url], first, check=False)
    assert again.returncode == 2
    advised = f"cidx init --force --storage server --qdrant-url {url}"
    assert advised in again.stderr
    run_cidx(advised.split()[1:], first)
    status = run_cidx(["status", "--json"], first).json()
    assert status["collection"] == collection and status["points"] == 0
    run_cidx(["index"], first)
    assert run_cidx(["status", "--json"], first).json()["points"] > 0


def test_collections_list_shows_the_servers_collections(tmp_path: Path) -> None:
    folder = tmp_path / "qdrant"
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        write_files(root, DEMO_PROJECT)
        run_cidx(["init", "--storage", "server", "--qdrant-url", f"local:{folder}"], root)
        run_cidx(["index"], root)
    own_b = run_cidx(["status", "--json"], b).json()["collection"]
    report = run_cidx(["collections", "list", "--json"], a).json()
    assert report["storage_mode"] == "server"
    assert report["store_dir"] == f"local:{folder}"
    rows = {row["name"]: row for row in report["collections"]}
    own = next(row for row in report["collections"] if row["current"])
    assert own["state"] == "in use" and own["points"] > 0
    assert rows[own_b]["state"] == "other" and rows[own_b]["mode"] == "server"
    assert "cidx-writer-claims" not in rows
    human = run_cidx(["collections", "list"], a).stdout
    assert own_b in human and "other" in human
