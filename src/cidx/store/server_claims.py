"""Writer claims on a Qdrant server: the records behind one writer per project.

A claim is a payload-only point in the server's `cidx-writer-claims`
collection saying who wants to write (or writes) which collection, and
until when: `key` (the collection), `holder` (a token unique to one
process), `host`, `pid`, `state` (`candidate` while asking, `held` once
granted) and `expires` (seconds since the epoch, by the claimant's clock).
Each holder has one point per key, so writing a claim again replaces it.
The rule that turns claims into a lease lives in `cidx.lease`; this module
only reads and writes them, with the store's retries and error messages.
Every write waits for the server and uses strong ordering, so a claim read
after another was acknowledged sees it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from qdrant_client import QdrantClient, models as m

from cidx.store.base import Claim

__all__ = ["CLAIMS", "ServerClaims"]


CLAIMS = "cidx-writer-claims"
_NAMESPACE = uuid.UUID("0f6d1c52-9a0b-4e5e-8a53-1f3c5a7e2b90")

Call = Callable[[str, Callable[[], Any], "str | None"], Any]


class ServerClaims:
    """The claims of one server, read and written through its store's `call`."""

    def __init__(self, client: QdrantClient, call: Call) -> None:
        self._client = client
        self._call = call
        self._ready = False

    def put(self, claim: Claim) -> None:
        self._ensure()
        point = m.PointStruct(
            id=_point_id(claim.key, claim.holder),
            vector={},
            payload={
                "key": claim.key,
                "holder": claim.holder,
                "host": claim.host,
                "pid": claim.pid,
                "state": claim.state,
                "expires": claim.expires,
            },
        )
        self._call(
            "write a writer claim",
            lambda: self._client.upsert(
                CLAIMS, points=[point], wait=True, ordering=m.WriteOrdering.STRONG
            ),
            CLAIMS,
        )

    def of(self, key: str) -> list[Claim]:
        """Every claim on `key`, expired ones included."""
        self._ensure()
        flt = m.Filter(must=[m.FieldCondition(key="key", match=m.MatchValue(value=key))])
        found, _next = self._call(
            "read the writer claims",
            lambda: self._client.scroll(CLAIMS, scroll_filter=flt, limit=1000, with_payload=True),
            CLAIMS,
        )
        return [_claim(record.payload or {}) for record in found]

    def drop(self, key: str, holder: str) -> None:
        self._ensure()
        selector = m.PointIdsList(points=[_point_id(key, holder)])
        self._call(
            "remove a writer claim",
            lambda: self._client.delete(
                CLAIMS, points_selector=selector, wait=True, ordering=m.WriteOrdering.STRONG
            ),
            CLAIMS,
        )

    def _ensure(self) -> None:
        if self._ready:
            return

        def create() -> None:
            if self._client.collection_exists(CLAIMS):
                return
            try:
                self._client.create_collection(CLAIMS, vectors_config={})
            except Exception:
                # Another machine made it first.
                if not self._client.collection_exists(CLAIMS):
                    raise
                return
            self._client.create_payload_index(
                CLAIMS, field_name="key", field_schema=m.PayloadSchemaType.KEYWORD, wait=True
            )

        self._call("create the writer claims collection", create, CLAIMS)
        self._ready = True


def _point_id(key: str, holder: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{key}\0{holder}"))


def _claim(payload: dict[str, Any]) -> Claim:
    return Claim(
        key=str(payload.get("key", "")),
        holder=str(payload.get("holder", "")),
        host=str(payload.get("host", "")),
        pid=int(payload.get("pid", 0) or 0),
        state="held" if payload.get("state") == "held" else "candidate",
        expires=float(payload.get("expires", 0.0) or 0.0),
    )
