"""`cidx backup` and `cidx restore` through the real CLI: round trips to the same
place, another path and another user's data folder; hostile and damaged
archives refused with the index untouched; kills and a full disk midway.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from cidx.archive import CHECKSUMS, MANIFEST
from cidx.embedding import model_id
from cidx.errors import ExitCode
from cidx.project import ProjectPaths
from tests.conftest import DEMO_PROJECT, cidx_cmd, run_cidx, write_files
from tests.helpers import generated_module

QUERIES = ["retry failed uploads", "verify token signature", "render dashboard", "deployment"]
# What `cidx status` says that depends on where and when, not on what is indexed.
_PLACE_FIELDS = {"root", "index_dir", "storage_path", "disk_bytes", "owner_pid", "owner_kind"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An indexed demo project, copied (mtimes kept) by each test that needs one."""
    base = tmp_path_factory.mktemp("template")
    root = base / "project"
    write_files(root, DEMO_PROJECT)
    run_cidx(["index"], root, env={"HOME": str(base / "home")})
    return root


@pytest.fixture
def proj(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(template, root, symlinks=True)
    return root


def answers(root: Path, env: dict[str, str] | None = None) -> list[Any]:
    """The results of every query in QUERIES, asked in one process."""
    out = run_cidx(["query", "--batch", "-", "-n", "5"], root, env=env, input="\n".join(QUERIES))
    return [json.loads(line)["results"] for line in out.stdout.splitlines()]


def status(root: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = run_cidx(["status", "--json"], root, env=env).json()
    return {k: v for k, v in data.items() if k not in _PLACE_FIELDS}


def index_bytes(root: Path) -> dict[str, str]:
    """sha256 of every file of the index (not the owner's lock and record, nor logs)."""
    index = ProjectPaths(root).index_dir
    out: dict[str, str] = {}
    for path in sorted(index.rglob("*")):
        rel = path.relative_to(index).as_posix()
        if path.is_dir() or rel.startswith("logs/") or rel in ("owner.lock", "owner.json"):
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def backup(root: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = run_cidx(["backup", "--json", *args], root, env=env).json()
    return result


# -- round trips -----------------------------------------------------------


def test_restore_in_place_gives_the_same_answers(proj: Path, tmp_path: Path) -> None:
    before_answers, before_status = answers(proj), status(proj)
    made = backup(proj, "--output", str(tmp_path / "backups"))
    archive = Path(made["archive"])
    assert archive.parent == tmp_path / "backups" and archive.name.endswith(".tar.zst")
    assert made["points"] == before_status["points"] > 0 and made["seconds"] > 0
    assert made["bytes"] == archive.stat().st_size

    # Without --force an index is never replaced; the advised command does it.
    refused = run_cidx(["restore", str(archive)], proj, check=False)
    assert refused.returncode == ExitCode.USAGE
    assert f"`cidx restore {archive} --force`" in refused.stderr
    # The index is changed meanwhile: the restore brings back the backed-up one.
    gone = proj / "src/uploads/retry.py"
    kept = os.stat(gone)
    gone.unlink()
    run_cidx(["index"], proj)
    assert answers(proj) != before_answers
    restored = run_cidx(["restore", str(archive), "--force", "--json"], proj).json()
    assert restored["replaced"] is True and restored["moved_from"] is None
    write_files(proj, {"src/uploads/retry.py": DEMO_PROJECT["src/uploads/retry.py"]})
    os.utime(gone, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    assert status(proj) == before_status
    assert answers(proj) == before_answers
    assert not list(proj.glob(".code-indexer.*"))


def test_restore_into_another_path_and_user(proj: Path, tmp_path: Path) -> None:
    before_answers, before_status = answers(proj), status(proj)
    made = backup(proj)  # into the default folder, in this user's data folder
    archive = Path(made["archive"])
    assert archive.parent == Path(os.environ["CIDX_DATA_DIR"]) / "backups"
    listed = run_cidx(["backup", "list", "--json"], proj).json()
    assert [b["path"] for b in listed["backups"]] == [str(archive)]
    assert listed["backups"][0]["project_root"] == str(proj)

    # Another user on another host: another home and data folder, the project
    # checked out elsewhere (with its files' times, as a copy or rsync keeps them).
    other_home = tmp_path / "other-home"
    other = {"HOME": str(other_home), "CIDX_DATA_DIR": str(tmp_path / "other-data")}
    moved = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(proj, moved, ignore=shutil.ignore_patterns(".code-indexer"))
    copied = tmp_path / "carried.tar.zst"
    shutil.copy(archive, copied)
    shutil.rmtree(proj)
    done = run_cidx(["restore", str(copied), "--into", str(moved), "--json"], tmp_path, env=other)
    result = done.json()
    assert result["replaced"] is False and result["moved_from"] == str(proj)
    assert result["root"] == str(moved)
    config = json.loads((moved / ".code-indexer/config.json").read_text())
    assert config["project_root"] == str(moved)
    assert status(moved, other) == before_status
    assert status(moved, other)["pending"] == {"added": 0, "modified": 0, "deleted": 0}
    assert answers(moved, other) == before_answers
    # The restored index is a working one: it follows edits.
    write_files(moved, {"src/extra.py": "def compress_archive_stream():\n    return 1\n"})
    run_cidx(["index"], moved, env=other)
    top = run_cidx(["query", "compress archive stream", "--json"], moved, env=other).results()
    assert top[0]["path"] == "src/extra.py"


def test_restore_into_a_fresh_checkout_embeds_nothing_again(proj: Path, tmp_path: Path) -> None:
    """A checkout elsewhere has new file times: the first sync re-reads the
    files and finds every chunk in the restored embedding cache."""
    before_answers = answers(proj)
    archive = backup(proj, "--output", str(tmp_path / "b"))["archive"]
    checkout = tmp_path / "checkout"
    write_files(checkout, DEMO_PROJECT)  # written now: other mtimes
    run_cidx(["restore", archive, "--into", str(checkout)], tmp_path)
    assert status(checkout)["pending"]["modified"] == len(DEMO_PROJECT)
    summary = run_cidx(["index", "--json"], checkout).json()
    # Same content: unchanged, only their recorded times refreshed.
    assert summary["chunks_embedded"] == 0 and summary["files_unchanged"] == len(DEMO_PROJECT)
    assert status(checkout)["pending"] == {"added": 0, "modified": 0, "deleted": 0}
    assert answers(checkout) == before_answers


def test_an_archive_of_an_earlier_cidx_restores(tmp_path: Path) -> None:
    """tests/data/backup-v1.tar.zst: the demo project backed up by the cidx that
    introduced archive format 1 (config and state schemas of that time); later
    versions bring its config and state database forward when restoring. Its
    vectors are of an earlier bundled model: restored as they are, the index
    then moves to the bundled model on its next `cidx index`."""
    stored = Path(__file__).parent / "data" / "backup-v1.tar.zst"
    checkout = tmp_path / "demo"
    write_files(checkout, DEMO_PROJECT)
    result = run_cidx(["restore", str(stored), "--into", str(checkout), "--json"], tmp_path).json()
    assert result["points"] == 6 and result["moved_from"] == "/tmp/fx/demo"
    config = ProjectPaths(checkout).config_file
    assert json.loads(config.read_text())["embedding"]["model_id"] != model_id()
    top = run_cidx(["query", "retry failed uploads", "--json"], checkout).results()
    assert top[0]["path"] == "src/uploads/retry.py"
    run_cidx(["index"], checkout)
    assert json.loads(config.read_text())["embedding"]["model_id"] == model_id()
    top = run_cidx(["query", "retry failed uploads", "--mode", "semantic", "--json"], checkout)
    assert top.results()[0]["path"] == "src/uploads/retry.py"
    assert run_cidx(["doctor"], checkout).returncode == 0


def test_list_verify_and_keep(proj: Path, tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    made = [backup(proj, "--output", str(folder), "--keep", "2") for _ in range(3)]
    assert made[2]["pruned"] == [made[0]["archive"]]
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(Path(m["archive"]).name for m in made[1:])
    listing = run_cidx(["backup", "list", str(folder), "--json"], proj).json()
    assert [b["path"] for b in listing["backups"]] == [made[2]["archive"], made[1]["archive"]]
    human = run_cidx(["backup", "list", str(folder)], proj).stdout
    assert "2 backups in" in human and str(proj) in human

    verified = run_cidx(["backup", "verify", made[2]["archive"], "--json"], proj).json()
    assert verified["files"] == made[2]["files"]
    assert verified["info"]["points"] == made[2]["points"]
    # A named archive, and the standard tools read it as it is.
    named = tmp_path / "named.tar.zst"
    backup(proj, "--output", str(named))
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(named), "-C", str(unpacked)], check=True)
    subprocess.run(["sha256sum", "--quiet", "-c", CHECKSUMS], cwd=unpacked, check=True)
    again = run_cidx(["backup", "--output", str(named)], proj, check=False)
    assert again.returncode == ExitCode.USAGE and "exists already" in again.stderr


def test_no_index_to_back_up(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cidx(["backup"], empty, check=False)
    assert result.returncode == ExitCode.NO_INDEX
    assert not (empty / ".code-indexer").exists()


# -- hostile and damaged archives ------------------------------------------


def _members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with open(archive, "rb") as fh:
        raw = zstandard.ZstdDecompressor().stream_reader(fh).read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def forge(
    archive: Path,
    out: Path,
    *,
    manifest: Callable[[dict[str, Any]], None] | None = None,
    extra: list[tuple[tarfile.TarInfo, bytes]] = (),  # type: ignore[assignment]
    oversize: str | None = None,
    fmt: int = tarfile.PAX_FORMAT,
) -> Path:
    """A copy of `archive` with its manifest edited, `extra` members added
    (listed in the manifest, with their sizes) and checksums recomputed to
    match, so that only the rule under test can refuse it."""
    members = _members(archive)
    doc = json.loads(members[0][1])
    for info, data in extra:
        doc["files"].append({"path": info.name, "size": len(data) if info.isreg() else 0})
    if manifest is not None:
        manifest(doc)
    rows: list[tuple[tarfile.TarInfo, bytes]] = []
    body = json.dumps(doc).encode()
    head = tarfile.TarInfo(MANIFEST)
    head.size = len(body)
    rows.append((head, body))
    for info, data in members[1:-1]:
        if info.name == oversize:
            data = data + b"\x01" * 4096
            info.size = len(data)
        rows.append((info, data))
    rows.extend(extra)
    sums = "".join(
        f"{hashlib.sha256(d).hexdigest()}  {i.name}\n" for i, d in rows if i.isreg()
    ).encode()
    tail = tarfile.TarInfo(CHECKSUMS)
    tail.size = len(sums)
    rows.append((tail, sums))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:", format=fmt) as tar:
        for info, data in rows:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    out.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(buffer.getvalue()))
    return out


def _entry(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, b""


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


@pytest.fixture
def archive(proj: Path, tmp_path: Path) -> Path:
    return Path(backup(proj, "--output", str(tmp_path / "good.tar.zst"))["archive"])


def _collection(archive: Path) -> str:
    name: str = json.loads(_members(archive)[0][1])["collections"][0]["name"]
    return name


def _refused(proj: Path, bad: Path, expect: str, code: int = ExitCode.ARCHIVE) -> str:
    before = index_bytes(proj)
    result = run_cidx(["restore", str(bad), "--force"], proj, check=False)
    assert result.returncode == code, result.stderr
    assert expect in result.stderr, result.stderr
    assert index_bytes(proj) == before
    assert not list(proj.glob(".code-indexer.*"))
    assert not (proj.parent / "evil").exists() and not (proj / "evil").exists()
    verify = run_cidx(["backup", "verify", str(bad)], proj, check=False)
    assert verify.returncode != 0
    return result.stderr


def test_damaged_archives_are_refused(proj: Path, archive: Path, tmp_path: Path) -> None:
    data = archive.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    (tmp_path / "flipped.tar.zst").write_bytes(bytes(flipped))
    (tmp_path / "cut.tar.zst").write_bytes(data[: len(data) * 2 // 3])
    for bad in ("flipped", "cut"):
        message = _refused(proj, tmp_path / f"{bad}.tar.zst", "damaged")
        assert "`cidx backup list`" in message
    # The advised next step works: it lists the good backup beside them.
    listing = run_cidx(["backup", "list", str(tmp_path), "--json"], proj).json()
    readable = [b["path"] for b in listing["backups"] if b["problem"] is None]
    assert str(archive) in readable
    # A checksum that does not match, in a stream that is otherwise sound.
    state = "index/state.db"
    wrong = forge(archive, tmp_path / "sum.tar.zst")
    members = _members(wrong)
    sums = members[-1][1].replace(
        hashlib.sha256(dict((i.name, d) for i, d in members)[state]).hexdigest().encode(),
        b"0" * 64,
    )
    _rewrite_last(wrong, sums)
    _refused(proj, wrong, f"{state} does not match its sha256")
    assert run_cidx(["restore", str(archive), "--force"], proj).returncode == 0
    # A failed restore into a new folder leaves nothing that blocks the next one.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    failed = run_cidx(["restore", str(wrong), "--into", str(fresh)], tmp_path, check=False)
    assert failed.returncode == ExitCode.ARCHIVE
    run_cidx(["restore", str(archive), "--into", str(fresh)], tmp_path)


def _rewrite_last(archive: Path, data: bytes) -> None:
    members = _members(archive)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for info, body in members[:-1]:
            tar.addfile(info, io.BytesIO(body))
        tail = tarfile.TarInfo(CHECKSUMS)
        tail.size = len(data)
        tar.addfile(tail, io.BytesIO(data))
    archive.write_bytes(zstandard.ZstdCompressor().compress(buffer.getvalue()))


def test_incompatible_archives_are_refused(proj: Path, archive: Path, tmp_path: Path) -> None:
    def newer(doc: dict[str, Any]) -> None:
        doc["format_version"] = 99
        doc["cidx_version"] = "9.0"

    message = _refused(proj, forge(archive, tmp_path / "n.tar.zst", manifest=newer), "format 99")
    assert "by cidx 9.0" in message and "Upgrade cidx" in message

    # An archive of another embedding model is not refused: it restores and
    # migrates (test_an_archive_of_an_earlier_cidx_restores).

    def newer_state(doc: dict[str, Any]) -> None:
        doc["state_schema"] = 999

    forged = forge(archive, tmp_path / "s.tar.zst", manifest=newer_state)
    assert "Upgrade cidx" in _refused(proj, forged, "state schema 999")


def test_hostile_members_are_refused(proj: Path, archive: Path, tmp_path: Path) -> None:
    name = _collection(archive)
    inside = f"collections/{name}"
    cases: list[tuple[str, Path]] = [
        (
            "symbolic link",
            forge(
                archive,
                tmp_path / "l.tar.zst",
                extra=[_entry(f"{inside}/x", tarfile.SYMTYPE, "/etc")],
            ),
        ),
        (
            "hard link",
            forge(
                archive,
                tmp_path / "h.tar.zst",
                extra=[_entry(f"{inside}/y", tarfile.LNKTYPE, "index/config.json")],
            ),
        ),
        (
            "a device",
            forge(
                archive, tmp_path / "d.tar.zst", extra=[_entry(f"{inside}/null", tarfile.CHRTYPE)]
            ),
        ),
        (
            "a FIFO",
            forge(archive, tmp_path / "f.tar.zst", extra=[_entry(f"{inside}/p", tarfile.FIFOTYPE)]),
        ),
    ]
    for kind, bad in cases:
        _refused(proj, bad, kind)

    # Paths out of the target: listed in the manifest, the manifest is refused...
    for evil in ("../evil", "/tmp/evil", f"{inside}/../../../evil", "index/../../evil"):
        bad = forge(archive, tmp_path / "t.tar.zst", extra=[_file(evil, b"owned")])
        _refused(proj, bad, "is not valid")

    # ...and not listed, the member is.
    def unlisted(doc: dict[str, Any]) -> None:
        doc["files"] = [f for f in doc["files"] if "evil" not in f["path"]]

    bad = forge(archive, tmp_path / "u.tar.zst", extra=[_file("../evil", b"x")], manifest=unlisted)
    _refused(proj, bad, "which its manifest does not list")
    # GNU long-name records (what `tar` writes for long paths): cidx writes pax only.
    _refused(proj, forge(archive, tmp_path / "gnu.tar.zst", fmt=tarfile.GNU_FORMAT), "GNU long")
    # A member larger than the manifest announces.
    bad = forge(archive, tmp_path / "o.tar.zst", oversize="index/config.json")
    _refused(proj, bad, "bytes where its manifest says")

    # A manifest announcing a gigantic file is refused before anything is read.
    def huge(doc: dict[str, Any]) -> None:
        doc["files"][0]["size"] = 1 << 50

    _refused(proj, forge(archive, tmp_path / "g.tar.zst", manifest=huge), "is not valid")


# -- kills, a full disk, a running watcher -----------------------------------


def test_killed_backup_leaves_no_archive(proj: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    for point in ("backup.snapshot", "backup.archive:3"):
        killed = run_cidx(
            ["backup", "--output", str(folder)], proj, env={"CIDX_FAILPOINT": point}, check=False
        )
        assert killed.returncode == -signal.SIGKILL
        assert not [p for p in folder.iterdir() if not p.name.startswith(".")]
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert list(ProjectPaths(proj).index_dir.glob(".backup.*.tmp"))
    # The next backup removes what the killed ones left, and succeeds.
    made = backup(proj, "--output", str(folder))
    assert [p.name for p in folder.iterdir()] == [Path(made["archive"]).name]
    assert not list(ProjectPaths(proj).index_dir.glob(".backup.*.tmp"))
    assert run_cidx(["doctor"], proj).returncode == 0


def test_killed_restore_leaves_the_old_index(proj: Path, archive: Path, tmp_path: Path) -> None:
    write_files(proj, {"src/later.py": "def added_after_the_backup():\n    return 2\n"})
    run_cidx(["index"], proj)
    before_answers = answers(proj)
    for point in ("restore.extracted", "restore.swap"):
        # (Read just before: a query's sync and the store's opening touch files.)
        before = index_bytes(proj)
        killed = run_cidx(
            ["restore", str(archive), "--force"], proj, env={"CIDX_FAILPOINT": point}, check=False
        )
        assert killed.returncode == -signal.SIGKILL
        assert index_bytes(proj) == before
        assert list(proj.glob(".code-indexer.restore.*.tmp"))
        assert answers(proj) == before_answers
    # Killed after the swap: the restored index is in place, the old one goes.
    killed = run_cidx(
        ["restore", str(archive), "--force"],
        proj,
        env={"CIDX_FAILPOINT": "restore.swapped"},
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    assert index_bytes(proj) != before
    assert run_cidx(["restore", str(archive), "--force"], proj).returncode == 0
    assert not list(proj.glob(".code-indexer.*"))
    assert run_cidx(["doctor"], proj).returncode == 0


def test_full_disk_during_restore_leaves_the_old_index(tmp_path: Path) -> None:
    from tests.fs_images import mounted

    with mounted("ext4", tmp_path / "disk", 64) as mnt:
        root = mnt / "project"
        write_files(root, {f"src/m{i:02d}.py": generated_module(i) for i in range(8)})
        run_cidx(["index"], root)
        made = backup(root, "--output", str(tmp_path / "b.tar.zst"))
        before_answers = answers(root)
        before = index_bytes(root)
        filler = mnt / "filler"
        # Leave less room than the restored index needs beside the current one.
        free = shutil.disk_usage(mnt).free
        subprocess.run(
            ["fallocate", "-l", str(max(free - 2 * 1024 * 1024, 0)), str(filler)], check=True
        )
        result = run_cidx(["restore", made["archive"], "--force"], root, check=False)
        assert result.returncode == ExitCode.DISK_FULL, result.stderr
        assert "Free some space" in result.stderr
        assert index_bytes(root) == before
        assert not list(root.glob(".code-indexer.*"))
        assert answers(root) == before_answers
        # The advised step: free space, run it again.
        filler.unlink()
        assert run_cidx(["restore", made["archive"], "--force"], root).returncode == 0
        assert answers(root) == before_answers


def test_backup_while_watching_restores_a_consistent_index(tmp_path: Path) -> None:
    from tests.test_watch import Watcher

    root = tmp_path / "watched"
    write_files(root, {f"src/m{i:02d}.py": generated_module(i) for i in range(10)})
    watcher = Watcher(root)
    stop = threading.Event()
    edits = 0

    def edit() -> None:
        nonlocal edits
        while not stop.is_set():
            n = edits % 10
            write_files(root, {f"src/m{n:02d}.py": generated_module(100 + edits)})
            edits += 1
            stop.wait(0.05)

    thread = threading.Thread(target=edit)
    thread.start()
    try:
        made = [backup(root, "--output", str(tmp_path / "b")) for _ in range(3)]
        # Queries are answered while backups run.
        assert run_cidx(["query", "join path", "--json"], root).results()
    finally:
        stop.set()
        thread.join()
        watcher.stop(signal.SIGKILL)
    assert edits > 10
    for i, m in enumerate(made):
        target = tmp_path / f"restored{i}"
        shutil.copytree(root, target, ignore=shutil.ignore_patterns(".code-indexer"))
        run_cidx(["restore", m["archive"], "--into", str(target)], tmp_path)
        report = run_cidx(["status", "--json"], target).json()
        # The manifest the backup captured and the store it captured agree.
        assert report["chunks"] == report["points"] == m["points"]
        assert report["problems"] == []
        assert run_cidx(["doctor"], target).returncode == 0


def test_restore_waits_for_the_owner(proj: Path, archive: Path) -> None:
    """A restore needs the index to itself: with --no-wait it is refused while
    `cidx watch` runs (naming the watcher), and goes through once it stops."""
    proc = subprocess.Popen([*cidx_cmd(), "watch"], cwd=proj, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not ProjectPaths(proj).socket_path.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        busy = run_cidx(["restore", str(archive), "--force", "--no-wait"], proj, check=False)
        assert busy.returncode == ExitCode.BUSY, busy.stderr
        assert "cidx watch" in busy.stderr and "without --no-wait" in busy.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert run_cidx(["restore", str(archive), "--force", "--no-wait"], proj).returncode == 0
