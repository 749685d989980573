"""Durable atomic writes and the free-space checks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cidx import fsutil
from cidx.errors import DiskFullError, ExitCode


def test_write_atomic_syncs_the_file_then_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[str, bytes | None]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            synced.append(("folder", None))
        else:
            # What is on its way to the disk when the file is synced.
            synced.append(("file", Path(f"/proc/self/fd/{fd}").read_bytes()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    target = tmp_path / "config.json"
    target.write_text("old")
    fsutil.write_atomic(target, '{"new": true}')
    assert synced == [("file", b'{"new": true}'), ("folder", None)]
    assert target.read_text() == '{"new": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_write_atomic_can_skip_syncing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", calls.append)
    fsutil.write_atomic(tmp_path / "owner.json", "{}", durable=False)
    assert calls == []


def test_a_shortage_of_space_is_a_disk_full_error(tmp_path: Path) -> None:
    free = fsutil.free_bytes(tmp_path)
    fsutil.ensure_free(tmp_path / "not" / "yet" / "created", 1)
    with pytest.raises(DiskFullError) as caught:
        fsutil.ensure_free(tmp_path, free + 10**15)
    assert caught.value.exit_code == ExitCode.DISK_FULL == 11
    message = caught.value.message
    assert str(tmp_path) in message and "free" in message and "needed" in message
    assert "`cidx index`" in message
