"""state.db: migrations from stored older copies, manifest, embedding cache."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from cidx.errors import StateError
from cidx.migration._records import MigrationLog, MigrationRecord, read_records
from cidx.state import FileRecord, StateDB
from cidx.state.migrations import MIGRATIONS
from cidx.state.moves import CollectionMigration, MoveTable

DATA = Path(__file__).parent / "data"


COLLECTION = "cidx-0123456789ab-all-minilm-l6-v2-int8-128"


def test_a_stored_v1_database_migrates_and_keeps_its_data(tmp_path: Path) -> None:
    copy = tmp_path / "state.db"
    shutil.copy(DATA / "state-v1.db", copy)
    db = StateDB(copy, collection=COLLECTION)
    assert db.schema_version == len(MIGRATIONS) == 8
    # m002: the vector cache is a rowid table with a unique key.
    ddl = db.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'embeddings'").fetchone()[0]
    assert "WITHOUT ROWID" not in ddl and "id        INTEGER PRIMARY KEY" in ddl
    indexes = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"embeddings_key", "embeddings_used_at"} <= indexes
    rec = db.manifest(COLLECTION).file("src/app.py")
    assert rec is not None and rec.chunk_ids == ("11111111-1111-5111-8111-111111111111",)
    cached = db.cached_vectors("all-MiniLM-L6-v2-int8@128", [b"\x01" * 16])
    np.testing.assert_array_equal(cached[b"\x01" * 16], np.arange(384, dtype=np.float32))
    assert db.manifest(COLLECTION).get_mark("index_format") == "chunker=1;repr=1;sparse=1"
    assert db.get_meta("index_format") is None
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_stored_v2_database_gets_its_manifest_keyed_by_collection(tmp_path: Path) -> None:
    copy = tmp_path / "state.db"
    shutil.copy(DATA / "state-v2.db", copy)
    db = StateDB(copy, collection=COLLECTION)
    assert db.schema_version == len(MIGRATIONS)
    manifest = db.manifest(COLLECTION)
    files = manifest.files()
    assert set(files) == {"src/app.py", "logo.png"}
    assert files["src/app.py"].chunk_ids == (
        "22222222-2222-5222-8222-222222222222",
        "33333333-3333-5333-8333-333333333333",
    )
    assert files["logo.png"].status == "binary"
    assert manifest.counts() == (1, 2)
    # The sync marks moved with the manifest; other metadata stayed.
    assert manifest.get_mark("index_format") == "chunker=2;repr=2;sparse=2"
    assert manifest.get_mark("sync_dirty") == "1700000002.5"
    assert manifest.get_mark("last_index_seconds") == "1.250"
    assert db.get_meta("sync_dirty") is None and db.get_meta("other_key") == "kept"
    # Another collection's manifest is its own.
    assert db.manifest("other").files() == {} and db.manifest("other").counts() == (0, 0)
    cached = db.cached_vectors("all-MiniLM-L6-v2-int8@128", [b"\x02" * 16])
    assert len(cached) == 1


@pytest.mark.parametrize("version", [3, 4])
def test_a_stored_v3_or_v4_database_gets_a_migrations_table_and_keeps_its_data(
    tmp_path: Path, version: int
) -> None:
    copy = tmp_path / "state.db"
    shutil.copy(DATA / f"state-v{version}.db", copy)
    # Since v3 manifests are per collection: no collection is needed to migrate.
    db = StateDB(copy)
    assert db.schema_version == len(MIGRATIONS) == 8
    manifest = db.manifest(COLLECTION)
    files = manifest.files()
    assert set(files) == {"src/app.py", "docs/a.md"}
    assert files["src/app.py"].chunk_ids == (
        "44444444-4444-5444-8444-444444444444",
        "55555555-5555-5555-8555-555555555555",
    )
    assert manifest.counts() == (2, 3)
    assert manifest.get_mark("index_format") == "chunker=2;repr=2;sparse=2"
    assert manifest.get_mark("last_index_at") == "1700000003.0"
    assert db.get_meta("other_key") == "kept"
    cached = db.cached_vectors("all-MiniLM-L6-v2-int8@128", [b"\x03" * 16])
    np.testing.assert_array_equal(cached[b"\x03" * 16], np.arange(384, dtype=np.float32))
    # m004 (aliases) ran on v3; v4 keeps the alias it had.
    aliases = db.conn.execute("SELECT name, target FROM aliases").fetchall()
    assert aliases == ([] if version == 3 else [("old-name", COLLECTION)])
    # m005: migrations are recorded, and a record reads back as written.
    log = MigrationLog(db)
    assert log.all() == []
    record = log.add(
        MigrationRecord(
            id="m1",
            kind="relocate",
            status="copying",
            started_at=1.0,
            source_mode="global",
            source_collection="a",
            target_mode="local",
            target_collection="b",
            backup="/data/a",
        )
    )
    record = log.update(record, next_offset="00000000-0000-0000-0000-000000000002", copied=2)
    assert log.unfinished() == [record]
    done = log.update(record, status="done")
    assert done.ended_at is not None and log.unfinished() == [] and log.all() == [done]
    db.close()
    assert read_records(copy) == [done]


def test_a_stored_v5_database_gets_collection_migrations_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "state.db"
    shutil.copy(DATA / "state-v5.db", copy)
    db = StateDB(copy)
    assert db.schema_version == len(MIGRATIONS) == 8
    name = "cidx-0123456789ab-cidx-code-minilm-l6-int8-128"
    rec = db.manifest(name).file("src/app.py")
    assert rec is not None and rec.chunk_ids == ("44444444-4444-5444-8444-444444444444",)
    assert db.manifest(name).get_mark("index_format") == "chunker=3;repr=2;sparse=2"
    assert db.aliases.all()["old-name"].target == name
    assert [r.id for r in read_records(copy) or []] == ["abc123"]
    cached = db.cached_vectors("cidx-code-minilm-l6-int8@128", [b"\x05" * 16])
    np.testing.assert_array_equal(cached[b"\x05" * 16], np.arange(384, dtype=np.float32))
    # m006: the tables of collection migrations, empty, and usable.
    table = MoveTable(db)
    assert table.all() == [] and table.active() is None and table.version() == 0
    move = CollectionMigration("m1", name, "new", "backfill", "a@1", "a@1", 384, 64, 0.0, "user")
    with db.transaction() as tx:
        table.add(tx, move)
        table.queue(tx, "m1", ["p1", "p2"])
        table.bury(tx, "m1", ["p3"])
    assert table.active() == move and table.version() == 1
    assert [e.point_id for e in table.outbox("m1")] == ["p1", "p2"]
    assert table.buried("m1", ["p1", "p3"]) == {"p3"}
    db.close()


def test_a_stored_v6_database_keeps_its_migration_and_gets_stores(tmp_path: Path) -> None:
    copy = tmp_path / "state.db"
    shutil.copy(DATA / "state-v6.db", copy)
    db = StateDB(copy)
    assert db.schema_version == len(MIGRATIONS) == 8
    table = MoveTable(db)
    # m007: the migration under way keeps its row, outbox and tombstones; both
    # of its sides are in the project's own store.
    move = table.active()
    assert move is not None and (move.id, move.phase, move.copied, move.total) == (
        "m6",
        "backfill",
        1,
        2,
    )
    assert move.source_store is None and move.target_store is None and not move.moves_store
    assert [e.point_id for e in table.outbox("m6")] == ["p1"]
    assert table.buried("m6", ["p1", "p2"]) == {"p2"}
    with db.transaction() as tx:
        moved = table.update(tx, move, target_store='{"mode": "global"}')
    assert table.active() == moved and moved.moves_store
    db.close()


def test_a_stored_v6_database_gets_dense_pending_marks_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "state.db"
    shutil.copy(DATA / "state-v6.db", copy)
    db = StateDB(copy)
    assert db.schema_version == len(MIGRATIONS) == 8
    name = "cidx-0123456789ab-cidx-code-minilm-l6-int8-128"
    manifest = db.manifest(name)
    rec = manifest.file("src/app.py")
    assert rec is not None and rec.chunk_ids == ("44444444-4444-5444-8444-444444444444",)
    # m008: every file stored before has its dense vectors.
    assert not rec.dense_pending
    assert manifest.dense_pending() == []
    assert manifest.dense_share() is None
    assert db.manifest(name).get_mark("index_format") == "chunker=3;repr=2;sparse=2"
    # A staged write marks a file; the dense pass clears the mark of the
    # version it embedded, not of one written again since.
    staged = FileRecord("src/new.py", 10, 1, "h", "indexed", "python", ("a", "b"), 1.0, True)
    with db.transaction() as tx:
        manifest.put(tx, [staged])
    assert [r.path for r in manifest.dense_pending()] == ["src/new.py"]
    share = manifest.dense_share()
    assert share is not None
    assert (share.chunks, share.pending) == (3, 2) and share.share == pytest.approx(1 / 3)
    rewritten = FileRecord("src/new.py", 11, 2, "h2", "indexed", "python", ("c",), 2.0, True)
    with db.transaction() as tx:
        manifest.put(tx, [rewritten])
        manifest.dense_done(tx, [staged])
    assert [r.path for r in manifest.dense_pending()] == ["src/new.py"]
    with db.transaction() as tx:
        manifest.dense_done(tx, [rewritten])
    assert manifest.dense_pending() == [] and manifest.dense_share() is None
    db.close()


def test_an_old_manifest_needs_to_know_its_collection(tmp_path: Path) -> None:
    copy = tmp_path / "state.db"
    shutil.copy(DATA / "state-v2.db", copy)
    with pytest.raises(StateError, match="older cidx"):
        StateDB(copy)
    # Nothing was changed by the refusal: it migrates once told.
    assert StateDB(copy, collection=COLLECTION).manifest(COLLECTION).counts() == (1, 2)


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateDB(path).close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StateError, match="newer than this cidx"):
        StateDB(path)


def test_a_garbage_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match=str(path)):
        StateDB(path)


def test_manifest_round_trip_counts_and_rename(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    manifest, other = db.manifest("one"), db.manifest("two")
    recs = [
        FileRecord("a.py", 1, 2, "h1", "indexed", "python", ("x", "y"), 3.0),
        FileRecord("b.bin", 1, 2, "h2", "binary", "text", (), 3.0),
    ]
    with db.transaction() as tx:
        manifest.put(tx, recs)
        other.put(tx, recs[:1])
        manifest.set_mark("sync_dirty", "1", tx)
    assert manifest.files() == {r.path: r for r in recs}
    assert manifest.counts() == (1, 2) and other.counts() == (1, 2)
    assert manifest.indexed_paths() == ["a.py"] and manifest.languages() == {"python"}
    with db.transaction() as tx:
        manifest.delete(tx, ["a.py"])
    assert manifest.counts() == (0, 0) and other.counts() == (1, 2)
    with db.transaction() as tx:
        renamed = manifest.rename(tx, "three")
    assert renamed.files() == {"b.bin": recs[1]} and renamed.get_mark("sync_dirty") == "1"
    assert manifest.files() == {} and manifest.get_mark("sync_dirty") is None
    with db.transaction() as tx:
        renamed.clear(tx)
    assert renamed.files() == {} and renamed.get_mark("sync_dirty") is None
    assert other.counts() == (1, 2)


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    manifest = db.manifest("c")
    with pytest.raises(RuntimeError), db.transaction() as tx:
        manifest.put(tx, [FileRecord("a.py", 1, 2, "h", "indexed", "python", ("x",), 3.0)])
        raise RuntimeError("boom")
    assert manifest.files() == {}


def test_cache_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    vec = np.ones(4, dtype=np.float32)
    with db.transaction() as tx:
        db.put_vectors(tx, "m", [(bytes([i]) * 16, vec) for i in range(10)])
        tx.execute(
            "UPDATE embeddings SET used_at = 100 + CAST(hex(substr(text_hash,1,1)) AS INTEGER)"
        )
    assert db.prune_cache(keep=4) == 6
    left = {h[0] for h in db.cached_vectors("m", [bytes([i]) * 16 for i in range(10)])}
    assert left == {6, 7, 8, 9}


def test_the_cache_is_compact(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    vec = np.arange(384, dtype=np.float32)
    with db.transaction() as tx:
        db.put_vectors(tx, "m", [(i.to_bytes(16, "big"), vec) for i in range(2000)])
        # Writing one again only marks it used.
        db.put_vectors(tx, "m", [((5).to_bytes(16, "big"), vec)])
    assert db.cache_size() == 2000
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = (tmp_path / "state.db").stat().st_size
    assert size < 2000 * 384 * 4 * 1.5, size
