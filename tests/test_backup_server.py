"""Backups of a project whose index is on a Qdrant server (qdrant-client's
local mode behind a `local:` URL: the real server store and the real CLI).

A server collection goes into the archive as its points
(`cidx.pointsdump`), every vector exact. Restored into a server-mode project
(or with `--storage server --qdrant-url`) they are uploaded to the server
into a new collection, the old one dropped once the new index is in place;
restored elsewhere (or with `--storage local`), the project is in local mode
with every point, answering as it did on the server.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import zstandard

from cidx.archive import read_manifest
from cidx.errors import ExitCode
from cidx.pointsdump import POINTS
from cidx.store.server import ServerStore
from cidx.store.server_settings import ServerSettings
from tests.conftest import DEMO_PROJECT, run_cidx, write_files
from tests.helpers import generated_module
from tests.test_backup import QUERIES, answers, backup


def _server_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write_files(root, DEMO_PROJECT)
    write_files(root, {f"src/gen/m{n}.py": generated_module(n) for n in range(4)})
    run_cidx(["init", "--storage", "server", "--qdrant-url", f"local:{tmp_path / 'qdrant'}"], root)
    run_cidx(["index"], root)
    return root


def _members(archive: Path) -> list[str]:
    with (
        archive.open("rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as stream,
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        return [m.name for m in tar]


def test_a_server_index_is_backed_up_as_points_and_restores_locally(tmp_path: Path) -> None:
    root = _server_project(tmp_path)
    before = answers(root)
    assert all(before) and len(before) == len(QUERIES)
    points = run_cidx(["status", "--json"], root).json()["points"]

    made = backup(root, "--output", str(tmp_path / "backups"))
    archive = Path(made["archive"])
    assert made["points"] == points > 0
    members = _members(archive)
    manifest = read_manifest(archive)
    assert manifest.storage_mode == "server"
    (collection,) = manifest.collections
    assert collection.format == POINTS and collection.points == points
    name = collection.name
    assert {f"collections/{name}/{f}" for f in ("meta.json", "dense.f32", "points.jsonl")} <= set(
        members
    )
    assert run_cidx(["backup", "verify", str(archive)], root).returncode == 0

    # Into another folder: a local-mode project with every point, answering alike.
    other = tmp_path / "other"
    other.mkdir()
    restored = run_cidx(["restore", str(archive), "--into", str(other), "--json"], root).json()
    assert restored["converted"] and restored["converted_from"] == "server"
    assert restored["storage_mode"] == "local"
    config = json.loads((other / ".code-indexer" / "config.json").read_text())
    assert config["storage_mode"] == "local" and config["server"] is None
    status = run_cidx(["status", "--json"], other).json()
    assert status["points"] == points and status["storage_mode"] == "local"
    write_files(other, DEMO_PROJECT)
    write_files(other, {f"src/gen/m{n}.py": generated_module(n) for n in range(4)})
    summary = run_cidx(["index", "--json"], other).json()
    assert summary["chunks_embedded"] == 0, "the restored points and cache serve the same files"
    assert answers(other) == before

    # In place with --storage local: the human output names the way back.
    human = run_cidx(["restore", str(archive), "--force", "--storage", "local"], root)
    assert "backed up on a Qdrant server" in human.stdout
    advised = f"cidx storage migrate --to server --qdrant-url local:{tmp_path / 'qdrant'}"
    assert "`cidx storage migrate --to server --qdrant-url URL`" in human.stdout
    assert answers(root) == before
    run_cidx(advised.split()[1:], root)
    run_cidx(["collections", "migration", "cutover"], root)
    assert run_cidx(["status", "--json"], root).json()["storage_mode"] == "server"
    assert answers(root) == before


def _server_collections(folder: Path) -> set[str]:
    store = ServerStore.connect(ServerSettings(url=f"local:{folder}"))
    try:
        return set(store.list_collections())
    finally:
        store.close()


def test_a_server_backup_restores_onto_the_server(tmp_path: Path) -> None:
    root = _server_project(tmp_path)
    before = answers(root)
    status = run_cidx(["status", "--json"], root).json()
    old, points = status["collection"], status["points"]
    archive = Path(backup(root, "--output", str(tmp_path / "backups"))["archive"])

    # A restore that fails before the swap: the old index and collection stay,
    # the uploaded one goes.
    failed = run_cidx(
        ["restore", str(archive), "--force"],
        root,
        check=False,
        env={"CIDX_FAILPOINT_RAISE": "restore.swap:1"},
    )
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr
    assert _server_collections(tmp_path / "qdrant") == {old}
    assert run_cidx(["status", "--json"], root).json()["collection"] == old

    # Into the server-mode project itself: uploaded beside the old collection,
    # checked, then the old one dropped.
    restored = run_cidx(["restore", str(archive), "--force", "--json"], root).json()
    assert restored["storage_mode"] == "server" and not restored["converted"], restored
    (new,) = [c["name"] for c in restored["collections"]]
    assert new == f"{old}-r2" and restored["points"] == points
    status = run_cidx(["status", "--json"], root).json()
    assert status["storage_mode"] == "server" and status["collection"] == new
    assert status["points"] == points and status["problems"] == []
    assert _server_collections(tmp_path / "qdrant") == {new}
    assert answers(root) == before

    # Into another folder, onto another server: --storage server --qdrant-url.
    other, elsewhere = tmp_path / "other", tmp_path / "qdrant-2"
    other.mkdir()
    url = f"local:{elsewhere}"
    restored = run_cidx(
        ["restore", str(archive), "--into", str(other), "--qdrant-url", url, "--json"], root
    ).json()
    assert restored["storage_mode"] == "server"
    config = json.loads((other / ".code-indexer" / "config.json").read_text())
    assert config["storage_mode"] == "server" and config["server"]["url"] == url
    assert run_cidx(["status", "--json"], other).json()["points"] == points
    assert _server_collections(elsewhere) == {old}


def test_a_local_backup_does_not_go_onto_a_server(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_files(root, DEMO_PROJECT)
    run_cidx(["init"], root)
    run_cidx(["index"], root)
    archive = backup(root, "--output", str(tmp_path / "backups"))["archive"]
    other = tmp_path / "other"
    other.mkdir()
    url = f"local:{tmp_path / 'qdrant'}"
    refused = run_cidx(
        ["restore", archive, "--into", str(other), "--storage", "server", "--qdrant-url", url],
        root,
        check=False,
    )
    assert refused.returncode == ExitCode.USAGE and "cidx storage migrate --to server" in (
        refused.stderr
    ), refused.stderr
    assert not (other / ".code-indexer" / "config.json").exists()


def test_damaged_points_are_refused(tmp_path: Path) -> None:
    root = _server_project(tmp_path)
    archive = Path(backup(root, "--output", str(tmp_path / "backups"))["archive"])
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    broken = tmp_path / "broken.tar.zst"
    broken.write_bytes(bytes(raw))
    other = tmp_path / "other"
    other.mkdir()
    refused = run_cidx(["restore", str(broken), "--into", str(other)], root, check=False)
    assert refused.returncode == ExitCode.ARCHIVE
    assert "sha256" in refused.stderr or "damaged" in refused.stderr, refused.stderr
    # Nothing restored: no config, state or collection (the lock it took may stay).
    left = {p.name for p in (other / ".code-indexer").iterdir()}
    assert not left & {"config.json", "state.db", "qdrant-data"}, left
