"""The Qdrant server backend: the store interface over `qdrant-client`.

A collection on the server looks like an embedded shard: a dense vector
("dense", cosine), a sparse BM25 vector ("sparse", with the IDF modifier,
so the server weighs terms by the statistics of the whole collection) and
the same keyword payload indexes (`path` with prefix matching). Queries are
translated one to one, so hybrid search is the server's own prefetch plus
re-scoring and ranks exactly as the embedded store does (the store contract
tests compare them, also on the public benchmark's queries).

What differs from the embedded store, and why:

- Durability is the server's: every write waits for the server's
  acknowledgement (`wait=true`, medium write ordering so a replica never
  applies one project's writes out of order), and `flush` has nothing to do.
  `optimize` is left to the server's own optimizer, which merges segments
  and drops deleted points on its own schedule.
- A server collection is never "damaged" in cidx's sense: the server keeps
  its storage consistent and reports failures as errors (`StoreError`,
  `ServerError`), never as `StoreDamagedError`. So `set_aside` has no files
  to move: it drops the collection (a rebuild refills it from the project's
  files and the embedding cache) and returns None, and `drop_set_aside` has
  nothing to delete. Keeping an old copy while a new one is built is what
  native aliases are for (`set_aliases`), used by the alias work above.
- Requests are bounded (`upsert_batch` points, `QUERY_BATCH` searches, one
  `timeout` each) and retried with exponential backoff on transient failures
  only: a refused or reset connection, a timeout, 429, 502, 503, 504. Any
  other answer fails at once with the server's own words.
- The server is checked once, on first use: that it answers, accepts the API
  key, and runs a version this client supports (`MIN_SERVER`..`MAX_SERVER`).
  Messages name the URL and where the key came from, never the key.

`ServerStore.connect` opens a real server, or for a `local:` URL
qdrant-client's in-process local mode (a testing aid: exact search, one
process at a time, no snapshots, aliases kept in its folder).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from qdrant_client import QdrantClient, models as m
from qdrant_client.http.exceptions import UnexpectedResponse

from cidx.errors import StoreError
from cidx.fsutil import disk_usage
from cidx.store.base import (
    DENSE,
    PAYLOAD_INDEXES,
    CollectionInfo,
    Hit,
    PointData,
    PointFilter,
    PointRecord,
    SkipFn,
    StoreQuery,
    copy_page_by_points,
)
from cidx.store.server_calls import ServerCalls
from cidx.store.server_claims import CLAIMS, ServerClaims
from cidx.store.server_connect import MAX_SERVER, MIN_SERVER, Connection, open_client, tls
from cidx.store.server_faults import (
    already_exists,
    quiet,
    wrapped,
)
from cidx.store.server_settings import (
    ServerSettings,
    local_path,
)
from cidx.store.server_wire import (
    Snapshot,
    collection_config,
    delete_ops,
    filter_for,
    point_data,
    point_record,
    point_struct,
    request_for,
    search_params,
    snapshot_of,
)

__all__ = ["MAX_SERVER", "MIN_SERVER", "ServerStore", "Snapshot"]


T = TypeVar("T")

# Searches per request of a batch.
QUERY_BATCH = 64
# Ids per delete request.
DELETE_BATCH = 1024
_NO_SNAPSHOTS = (
    "Snapshots need a Qdrant server: the in-process local mode of {url} (a testing aid) has "
    "none. Point the index at a server (`cidx init --force --storage server --qdrant-url "
    "https://HOST:6333`) to use them."
)


class ServerStore:
    """Collections on one Qdrant server (or in qdrant-client's local mode)."""

    def __init__(self, connection: Connection, settings: ServerSettings) -> None:
        self.client = connection.client
        self.settings = settings
        self.url = settings.url
        self.local = connection.local
        # The API key is kept only for snapshot transfers, which go around
        # the client.
        self._api_key = connection.api_key
        self._calls = ServerCalls(connection, settings)
        self._claims: ServerClaims | None = None

    # -- opening -----------------------------------------------------------

    @classmethod
    def connect(cls, settings: ServerSettings, api_key: str | None = None) -> ServerStore:
        """A store on the server `settings` names. No request is made until first use.

        `api_key` defaults to `$CIDX_QDRANT_API_KEY` or the key file.
        """
        return cls(open_client(settings, api_key), settings)

    @classmethod
    def in_memory(cls, settings: ServerSettings | None = None) -> ServerStore:
        """Local mode in memory (tests): nothing survives `close`."""
        client = QdrantClient(location=":memory:", force_disable_check_same_thread=True)
        return cls(Connection(client, local=True), settings or ServerSettings(url="local:/memory"))

    def _call(self, what: str, fn: Callable[[], T], collection: str | None = None) -> T:
        return self._calls.call(what, fn, collection)

    # -- collections -------------------------------------------------------

    def list_collections(self) -> list[str]:
        found = self._call("list collections", self.client.get_collections)
        # The writer claims are cidx's own bookkeeping, not a project's collection.
        return sorted(c.name for c in found.collections if c.name != CLAIMS)

    def collection_exists(self, name: str) -> bool:
        return self._call("look up a collection", lambda: self.client.collection_exists(name), name)

    def create_collection(self, name: str, dim: int) -> None:
        def create() -> None:
            try:
                self.client.create_collection(name, **collection_config(self.settings, dim))
            except (UnexpectedResponse, ValueError) as exc:
                # A retried create whose first attempt got through.
                if not already_exists(exc):
                    raise
            if self.local:
                return  # local mode has no payload indexes (it scans)
            self.client.create_payload_index(
                name,
                "path",
                m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, prefix=True),
                wait=True,
            )
            for field_name in PAYLOAD_INDEXES:
                if field_name != "path":
                    self.client.create_payload_index(
                        name, field_name, m.PayloadSchemaType.KEYWORD, wait=True
                    )

        self._call("create a collection", create, name)

    def drop_collection(self, name: str) -> None:
        self._call("delete a collection", lambda: self.client.delete_collection(name), name)

    def rename_collection(self, old: str, new: str) -> None:
        """Give the collection `old` the name `new`.

        Qdrant cannot rename a collection, so `new` is created with `old`'s
        dimension, every point is copied (vectors and payload, in
        `upsert_batch` pages) and `old` is dropped last. Not atomic: a crash
        leaves `old` whole beside a partial `new`, which the caller's
        resumable move (cidx.renaming) drops and copies again. (Readers that
        must never see a gap use a native alias instead: `set_aliases`.)
        """
        if self.collection_exists(new):
            raise StoreError(
                f"Cannot rename the collection {old} to {new} on {self.url}: {new} exists already."
            )
        found = self._call("read a collection", lambda: self.client.get_collection(old), old)
        vectors = found.config.params.vectors
        dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if dense is None:
            raise StoreError(
                f"The collection {old} on {self.url} has no {DENSE!r} vector: it was not made "
                "by cidx. Leave it, or remove it with the server's own tools."
            )
        self.create_collection(new, int(dense.size))
        page: list[m.PointStruct] = []
        for record in self._scroll(old, True, True, self.settings.upsert_batch, None):
            vector: Any = record.vector or {}
            page.append(m.PointStruct(id=record.id, vector=vector, payload=record.payload))
            if len(page) >= self.settings.upsert_batch:
                self._write(new, page)
                page = []
        if page:
            self._write(new, page)
        self.drop_collection(old)

    def set_aside(self, name: str) -> Path | None:
        """Drop `name`: a server collection has no files to keep aside (see the
        module docstring); a rebuild refills it. Always None."""
        if self.collection_exists(name):
            self.drop_collection(name)
        return None

    def drop_set_aside(self, name: str) -> list[Path]:
        """Nothing is ever set aside on a server."""
        return []

    # -- points ------------------------------------------------------------

    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        size = self.settings.upsert_batch
        for start in range(0, len(points), size):
            self._write(name, [point_struct(p) for p in points[start : start + size]])

    def set_dense(self, name: str, ids: Sequence[str], vectors: Sequence[list[float]]) -> None:
        """Add dense vectors to points stored without them (the rest of each stays)."""
        size = self.settings.upsert_batch
        pairs = list(zip(ids, vectors, strict=True))
        for start in range(0, len(pairs), size):
            batch = [
                m.PointVectors(id=i, vector={DENSE: v}) for i, v in pairs[start : start + size]
            ]
            self._call(
                "write vectors",
                lambda batch=batch: self.client.update_vectors(  # type: ignore[misc]
                    name, batch, wait=True, ordering=m.WriteOrdering.MEDIUM
                ),
                name,
            )

    def _write(self, name: str, batch: list[m.PointStruct]) -> None:
        self._call(
            "write points",
            lambda: self.client.upsert(name, batch, wait=True, ordering=m.WriteOrdering.MEDIUM),
            name,
        )

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Delete points, leaving the BM25 statistics as if they had never been there.

        The server counts a deleted point's sparse vector in every IDF until
        its optimizer rewrites the segment (qdrant-client documents this for
        `IdfScope.GLOBAL`), as the embedded engine does until it reloads.
        So, as there, the sparse vectors are emptied first, in the same
        request as the delete; only existing points can be updated, hence
        the lookup.
        """
        for start in range(0, len(ids), DELETE_BATCH):
            chunk = list(ids[start : start + DELETE_BATCH])
            present = [
                str(r.id)
                for r in self._call(
                    "read points",
                    lambda chunk=chunk: self.client.retrieve(  # type: ignore[misc]
                        name, chunk, with_payload=False, with_vectors=False
                    ),
                    name,
                )
            ]
            ops = delete_ops(present, chunk)
            self._call(
                "delete points",
                lambda ops=ops: self.client.batch_update_points(  # type: ignore[misc]
                    name, ops, wait=True, ordering=m.WriteOrdering.MEDIUM
                ),
                name,
            )

    def delete_by_filter(self, name: str, flt: PointFilter) -> None:
        if flt.is_empty():
            raise ValueError("refusing to delete by an empty filter")
        # Through `delete`, for its BM25 statistics.
        self.delete(name, [pid for pid, _ in self.scroll(name, flt=flt)])

    def scroll(
        self,
        name: str,
        *,
        payload_fields: Sequence[str] = (),
        batch: int = 2048,
        flt: PointFilter | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        with_payload: bool | list[str] = list(payload_fields) if payload_fields else False
        for record in self._scroll(name, with_payload, False, batch, flt):
            yield str(record.id), dict(record.payload or {})

    def points(
        self, name: str, *, batch: int = 512, flt: PointFilter | None = None
    ) -> Iterator[PointRecord]:
        for record in self._scroll(name, True, [DENSE], batch, flt):
            yield point_record(record)

    def page(
        self,
        name: str,
        *,
        offset: str | None = None,
        limit: int = 256,
        flt: PointFilter | None = None,
    ) -> tuple[list[PointData], str | None]:
        """Up to `limit` whole points (both vectors and the payload) in id order,
        from the id `offset` on, and the id the next page starts at (None at
        the end): a copy can stop after any page and resume from there."""
        records, following = self._call(
            "read points",
            lambda: self.client.scroll(
                name,
                scroll_filter=filter_for(flt),
                limit=limit,
                offset=offset,
                with_payload=True,
                with_vectors=True,
            ),
            name,
        )
        points = [point_data(record) for record in records]
        return points, None if following is None else str(following)

    def _scroll(
        self,
        name: str,
        with_payload: bool | list[str],
        with_vectors: bool | list[str],
        batch: int,
        flt: PointFilter | None,
    ) -> Iterator[m.Record]:
        condition = filter_for(flt)
        offset: Any = None
        while True:
            records, offset = self._call(
                "read points",
                lambda offset=offset: self.client.scroll(  # type: ignore[misc]
                    name,
                    scroll_filter=condition,
                    limit=batch,
                    offset=offset,
                    with_payload=with_payload,
                    with_vectors=with_vectors,
                ),
                name,
            )
            yield from records
            if offset is None:
                return

    def copy_page(
        self,
        source: str,
        target: str,
        *,
        offset: str | None = None,
        limit: int = 256,
        skip: SkipFn | None = None,
    ) -> tuple[int, str | None]:
        return copy_page_by_points(self, source, target, offset=offset, limit=limit, skip=skip)

    def retrieve(self, name: str, ids: Sequence[str]) -> list[Hit]:
        records = self._call(
            "read points",
            lambda: self.client.retrieve(name, list(ids), with_payload=True, with_vectors=False),
            name,
        )
        return [Hit(str(r.id), 0.0, dict(r.payload or {})) for r in records]

    def count(self, name: str, flt: PointFilter | None = None) -> int:
        found = self._call(
            "count points",
            lambda: self.client.count(name, count_filter=filter_for(flt), exact=True),
            name,
        )
        return int(found.count)

    # -- search ------------------------------------------------------------

    def query(self, name: str, query: StoreQuery) -> list[Hit]:
        return self.query_batch(name, [query])[0]

    def query_batch(self, name: str, queries: Sequence[StoreQuery]) -> list[list[Hit]]:
        params = self._search_params()
        requests = [request_for(query, params) for query in queries]
        out: list[list[Hit]] = []
        for start in range(0, len(requests), QUERY_BATCH):
            chunk = requests[start : start + QUERY_BATCH]
            answers = self._call(
                "search",
                lambda chunk=chunk: self.client.query_batch_points(name, chunk),  # type: ignore[misc]
                name,
            )
            out.extend(
                [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in a.points]
                for a in answers
            )
        return out

    def _search_params(self) -> m.SearchParams | None:
        if self.local:
            return None  # local mode always searches exactly, and warns about params
        return search_params(self.settings)

    # -- maintenance -------------------------------------------------------

    def info(self, name: str) -> CollectionInfo:
        disk: int | None = None
        if self.local:
            disk = disk_usage(local_path(self.settings) / "collection" / name)
        return CollectionInfo(name=name, points=self.count(name), disk_bytes=disk)

    def optimize(self, name: str) -> None:
        """Nothing: the server's optimizer merges segments and drops deleted
        points by itself."""

    def flush(self, name: str | None = None) -> None:
        """Nothing: every write returned once the server had it in its WAL."""

    def close(self) -> None:
        with self._calls.guard, quiet(self.local):
            self.client.close()

    # -- aliases (native, changed atomically) ------------------------------

    def aliases(self) -> dict[str, str]:
        """Every alias on the server: alias -> collection."""
        found = self._call("list aliases", self.client.get_aliases)
        return {a.alias_name: a.collection_name for a in found.aliases}

    def set_aliases(self, point: Mapping[str, str], remove: Sequence[str] = ()) -> None:
        """Point each alias in `point` at its collection and remove those in
        `remove`, all in one atomic change: a reader sees the old mapping or
        the new one, never a mix or a missing alias."""
        current = self.aliases()
        ops: list[Any] = [
            m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=alias))
            for alias in [*point, *remove]
            if alias in current
        ]
        ops.extend(
            m.CreateAliasOperation(
                create_alias=m.CreateAlias(collection_name=collection, alias_name=alias)
            )
            for alias, collection in point.items()
        )
        if not ops:
            return

        def change() -> None:
            try:
                self.client.update_collection_aliases(ops)
            except Exception:
                # A retried change whose first attempt got through.
                now = {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}
                done = all(now.get(a) == c for a, c in point.items()) and not any(
                    a in now for a in remove
                )
                if not done:
                    raise

        self._call("change aliases", change)

    def resolve_alias(self, alias: str) -> str | None:
        """The collection `alias` points at, or None."""
        return self.aliases().get(alias)

    def writer_claims(self) -> ServerClaims:
        """Several machines may write this server: one writer per collection
        at a time, through claims kept on the server (`cidx.lease`)."""
        if self._claims is None:
            self._claims = ServerClaims(self.client, self._call)
        return self._claims

    # -- snapshots (server only) -------------------------------------------

    def create_snapshot(self, name: str) -> Snapshot:
        """A snapshot of `name`, made now and kept on the server.

        In a cluster, a collection snapshot holds the shards of the node that
        answers; docs/server.md says how to back up every node.
        """
        self._no_local_snapshots()
        made = self._call(
            "create a snapshot", lambda: self.client.create_snapshot(name, wait=True), name
        )
        if made is None:
            raise StoreError(
                f"The Qdrant server at {self.url} made no snapshot of {name}. Check the server's "
                "log for the cause."
            )
        return snapshot_of(made)

    def list_snapshots(self, name: str) -> list[Snapshot]:
        self._no_local_snapshots()
        found = self._call("list snapshots", lambda: self.client.list_snapshots(name), name)
        return sorted((snapshot_of(s) for s in found), key=lambda s: s.name)

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        self._no_local_snapshots()
        self._call(
            "delete a snapshot",
            lambda: self.client.delete_snapshot(name, snapshot, wait=True),
            name,
        )

    def download_snapshot(self, name: str, snapshot: Snapshot, dest: Path) -> Path:
        """Copy a snapshot from the server to `dest` (a file), checking its sha256."""
        self._no_local_snapshots()
        self._calls.check()
        tmp = dest.with_name(f".{dest.name}.part")
        digest = hashlib.sha256()

        def fetch() -> None:
            with (
                self._http() as http,
                http.stream("GET", f"/collections/{name}/snapshots/{snapshot.name}") as reply,
            ):
                if reply.status_code != 200:
                    reply.read()
                    raise UnexpectedResponse.for_response(reply)
                with tmp.open("wb") as out:
                    for block in reply.iter_bytes(1 << 20):
                        digest.update(block)
                        out.write(block)

        self._calls.attempts("download a snapshot", wrapped(fetch), name)
        if snapshot.checksum and digest.hexdigest() != snapshot.checksum:
            tmp.unlink(missing_ok=True)
            raise StoreError(
                f"The snapshot {snapshot.name} of {name} downloaded from {self.url} does not "
                "match its checksum. Download it again."
            )
        tmp.replace(dest)
        return dest

    def restore_snapshot(self, name: str, source: Path) -> None:
        """Replace (or create) collection `name` from a snapshot file on this machine."""
        self._no_local_snapshots()
        self._calls.check()

        def upload() -> None:
            with self._http() as http, source.open("rb") as f:
                reply = http.post(
                    f"/collections/{name}/snapshots/upload",
                    params={"priority": "snapshot", "wait": "true"},
                    files={"snapshot": (source.name, f, "application/octet-stream")},
                    timeout=None,
                )
                if reply.status_code not in (200, 202):
                    raise UnexpectedResponse.for_response(reply)

        self._calls.attempts("restore a snapshot", wrapped(upload), name)

    def cluster_settings(self, name: str) -> dict[str, int | None]:
        """How `name` is laid out: shard_number, replication_factor,
        write_consistency_factor, as the server reports them."""
        found = self._call("read a collection", lambda: self.client.get_collection(name), name)
        params = found.config.params
        return {
            "shard_number": params.shard_number,
            "replication_factor": params.replication_factor,
            "write_consistency_factor": params.write_consistency_factor,
        }

    def _no_local_snapshots(self) -> None:
        if self.local:
            raise StoreError(_NO_SNAPSHOTS.format(url=self.url))

    def _http(self) -> httpx.Client:
        """A plain HTTP client to the server, for the transfers qdrant-client leaves out."""
        headers = {"api-key": self._api_key} if self._api_key else {}
        return httpx.Client(
            base_url=self.url,
            headers=headers,
            verify=tls(self.settings),
            timeout=self.settings.timeout,
        )
