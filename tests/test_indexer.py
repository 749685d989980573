"""Incremental sync: every change ends equal to a clean rebuild, embedding only what is new."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cidx.indexer import RACY_SECONDS
from tests.conftest import write_files
from tests.helpers import clean_rebuild, full_snapshot, opened, sync

FILES = {
    "app/upload.py": '''
        import time


        def upload_with_retry(client, path, attempts=3):
            """Upload a file, retrying on network errors."""
            for n in range(attempts):
                try:
                    return client.put(path)
                except IOError:
                    time.sleep(2 ** n)
            raise RuntimeError("upload failed")


        class Uploader:
            """Queues uploads."""

            def __init__(self, client):
                self.client = client
                self.queue = []

            def enqueue(self, path):
                self.queue.append(path)
        ''',
    "app/config.py": """
        DEFAULTS = {"timeout": 30}


        def load_config(path):
            with open(path) as fh:
                return parse(fh.read())
        """,
    "docs/guide.md": """
        # Guide

        Install it.

        ## Retries

        Uploads are retried three times.
        """,
    "notes.txt": "plain text notes\nsecond line\n",
}


def _age(root: Path) -> None:
    # Make every file older than the racy window, as files normally are.
    past = time.time() - 10 * RACY_SECONDS
    for dirpath, _, names in os.walk(root):
        if ".code-indexer" in dirpath:
            continue
        for name in names:
            os.utime(os.path.join(dirpath, name), (past, past))


@pytest.fixture
def indexed(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write_files(root, FILES)
    _age(root)
    summary = sync(root)
    assert summary.files_added == 4
    assert summary.chunks_reused == 0
    assert summary.chunks_embedded == summary.points_upserted > 0
    return root


def _assert_equals_rebuild(root: Path, tmp_path: Path) -> None:
    assert full_snapshot(root) == clean_rebuild(root, tmp_path)


def test_first_index_matches_a_rebuild(indexed: Path, tmp_path: Path) -> None:
    store = full_snapshot(indexed)
    assert {p["path"] for p in store.values()} == set(FILES)
    symbols = {p["symbol"] for p in store.values()}
    assert {"upload_with_retry", "Uploader", "Uploader.enqueue", "load_config"} <= symbols
    _assert_equals_rebuild(indexed, tmp_path)


def test_noop_sync_touches_nothing(indexed: Path) -> None:
    summary = sync(indexed)
    assert summary.files_unchanged == 4
    assert summary.files_changed == summary.files_deleted == 0
    assert summary.chunks_embedded == summary.points_upserted == summary.points_deleted == 0


def test_editing_one_function_embeds_only_that_chunk(indexed: Path, tmp_path: Path) -> None:
    path = indexed / "app/upload.py"
    path.write_text(
        path.read_text().replace("self.queue.append(path)", "self.queue.insert(0, path)")
    )
    summary = sync(indexed)
    assert summary.files_modified == 1
    assert summary.chunks_embedded == 1  # Uploader.enqueue only
    _assert_equals_rebuild(indexed, tmp_path)


def test_inserting_lines_moves_later_chunks_without_embedding_them(
    indexed: Path, tmp_path: Path
) -> None:
    path = indexed / "app/upload.py"
    path.write_text("# a new first line\n\n" + path.read_text())
    summary = sync(indexed)
    assert summary.chunks_embedded == 1  # only the module chunk changed text
    after = full_snapshot(indexed)
    enqueue = next(p for p in after.values() if p["symbol"] == "Uploader.enqueue")
    assert enqueue["start_line"] == 23
    _assert_equals_rebuild(indexed, tmp_path)


def test_add_delete_rename_and_revert(indexed: Path, tmp_path: Path) -> None:
    write_files(indexed, {"app/extra.py": "def extra_helper():\n    return 42\n"})
    summary = sync(indexed)
    assert (summary.files_added, summary.chunks_embedded) == (1, 1)
    _assert_equals_rebuild(indexed, tmp_path)

    (indexed / "notes.txt").unlink()
    summary = sync(indexed)
    assert summary.files_deleted == 1 and summary.points_deleted == 1
    assert summary.chunks_embedded == 0
    _assert_equals_rebuild(indexed, tmp_path)

    (indexed / "app/config.py").rename(indexed / "app/settings.py")
    summary = sync(indexed)
    assert (summary.files_added, summary.files_deleted) == (1, 1)
    assert summary.chunks_embedded == 0  # moved content comes from the cache
    assert summary.chunks_reused > 0
    _assert_equals_rebuild(indexed, tmp_path)

    target = indexed / "app/upload.py"
    original = target.read_text()
    target.write_text(original.replace("attempts=3", "attempts=5"))
    assert sync(indexed).chunks_embedded == 1
    target.write_text(original)
    summary = sync(indexed)
    assert summary.files_modified == 1 and summary.chunks_embedded == 0  # reverted: cached
    _assert_equals_rebuild(indexed, tmp_path)


def test_touch_without_change_rewrites_no_points(indexed: Path) -> None:
    path = indexed / "app/config.py"
    os.utime(path, None)
    summary = sync(indexed)
    assert summary.files_changed == 0 and summary.files_unchanged == 4
    assert summary.points_upserted == summary.points_deleted == 0


def test_same_content_in_two_files_is_embedded_once(indexed: Path, tmp_path: Path) -> None:
    body = "def twin_function(value):\n    return value * 2 + 1\n"
    write_files(indexed, {"a/one.py": body, "b/two.py": body})
    summary = sync(indexed)
    assert summary.files_added == 2
    assert summary.chunks_embedded == 1 and summary.chunks_reused == 1
    _assert_equals_rebuild(indexed, tmp_path)


def test_an_edit_in_the_same_second_is_not_missed(indexed: Path) -> None:
    # Two writes inside one mtime tick with the same size: only the racy
    # re-hash notices the second.
    path = indexed / "app/racy.py"
    path.write_text("def first(): pass\n")
    st = os.stat(path)
    sync(indexed)
    path.write_text("def other(): pass\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    summary = sync(indexed)
    assert summary.files_modified == 1
    assert any(p["symbol"] == "other" for p in full_snapshot(indexed).values())


def test_bad_inputs_are_reported_and_never_stop_the_run(indexed: Path, tmp_path: Path) -> None:
    write_files(
        indexed,
        {
            "data/blob.dat": b"\x00\x01\x02binary" * 10,
            "legacy/latin1.py": "def caf\xe9():\n    return 'na\xefve'\n".encode("latin-1"),
            "big/huge.txt": "x" * (1024 * 1024 + 1),
            "empty.py": "",
        },
    )
    os.symlink("loop_b", indexed / "loop_a")
    os.symlink("loop_a", indexed / "loop_b")
    os.symlink("missing-target", indexed / "dangling")
    summary = sync(indexed)
    reasons = {i.path: i.reason for i in summary.skipped}
    assert reasons["data/blob.dat"] == "binary"
    assert reasons["big/huge.txt"] == "too_large"
    assert reasons["loop_a"] == reasons["loop_b"] == "symlink_loop"
    assert reasons["dangling"] == "broken_symlink"
    warnings = {i.path: i.reason for i in summary.warnings}
    assert warnings == {"legacy/latin1.py": "invalid_utf8"}
    store = full_snapshot(indexed)
    latin = [p for p in store.values() if p["path"] == "legacy/latin1.py"]
    assert latin and "\ufffd" in latin[0]["text"]
    assert not any(
        p["path"] in ("data/blob.dat", "big/huge.txt", "empty.py") for p in store.values()
    )

    # The binary file becomes text: now it is indexed.
    (indexed / "data/blob.dat").write_text("def now_text(): pass\n")
    summary = sync(indexed)
    assert "data/blob.dat" not in {i.path for i in summary.skipped}
    assert any(p["path"] == "data/blob.dat" for p in full_snapshot(indexed).values())


def test_clear_rebuilds_from_the_cache(indexed: Path, tmp_path: Path) -> None:
    before = full_snapshot(indexed)
    summary = sync(indexed, clear=True)
    assert summary.rebuilt and summary.chunks_embedded == 0
    assert full_snapshot(indexed) == before


def test_drift_between_manifest_and_store_is_repaired(indexed: Path, tmp_path: Path) -> None:
    with opened(indexed) as engine:
        some = next(iter(engine.manifest.files().values()))
        engine.store.delete(engine.collection, list(some.chunk_ids[:1]))
    summary = sync(indexed)
    assert summary.files_added == 1  # the damaged file was re-indexed
    _assert_equals_rebuild(indexed, tmp_path)
