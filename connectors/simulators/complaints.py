"""Complaint platform simulator: a changes feed over its records, and records by id.

The feed is a log of change sequence numbers: every put of a record appends a new number, and a page
returns the records whose latest change is after the cursor, oldest first, each whole and current. So a
record changed twice before a page is read appears once, and again in a later page if it changes again.
The cursor is opaque to clients: base64 of "v1:<sequence number>".

Extra control routes: POST /_sim/records {"items": [...]} adds or replaces records (taken raw, so tests
can feed broken ones); GET /_sim/records/count.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response

from connectors.simulators.base import Faults, SimLayer, new_app


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, seq = text.partition(":")
        if version != "v1" or not seq.isdigit():
            raise ValueError
        return int(seq)
    except ValueError:
        raise ValueError(f"invalid cursor {cursor!r}") from None


class Feed:
    """The platform's records, each kept as its JSON text: a page is the texts joined, and a big feed (a
    benchmark's million records) costs its bytes, not a million dicts."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}  # record key -> the record as JSON
        self.latest: dict[str, int] = {}  # record key -> its latest change's sequence number
        self.log: list[str] = []  # log[seq - 1] is the key changed at seq

    def put(self, record: Any) -> int:
        return self.put_json(record.get("id") if isinstance(record, dict) else None, _encode(record))

    def put_json(self, rid: Any, body: bytes) -> int:
        """A record given as its JSON text, with its id (anything but a string: an anonymous broken record)."""
        seq = len(self.log) + 1
        key = rid if isinstance(rid, str) else f"_anonymous-{seq}"  # broken records still travel the feed
        self.log.append(key)
        self.latest[key] = seq
        self.records[key] = body
        return seq

    def page(self, after: int, limit: int) -> tuple[list[bytes], int, bool]:
        items: list[bytes] = []
        i = after
        while i < len(self.log) and len(items) < limit:
            key = self.log[i]
            i += 1
            if self.latest[key] == i:  # skip superseded changes: the record shows up at its latest one
                items.append(self.records[key])
        j = i
        while j < len(self.log) and self.latest[self.log[j]] != j + 1:
            j += 1
        return items, (j if j == len(self.log) else i), j < len(self.log)


def _encode(record: Any) -> bytes:
    # As the platform writes JSON; allow_nan keeps tests able to feed non-JSON numbers through the feed.
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def route_key(method: str, path: str) -> str:
    if path.startswith("/api/v1/complaints/") and path != "/api/v1/complaints/changes":
        return f"{method} /api/v1/complaints/{{id}}"
    return f"{method} {path}"


def create_app(
    records: list[Any] | None = None,  # raw: tests may feed records that break records.md
    *,
    token: str | None = None,
    faults: Faults | None = None,
    seed: int | None = None,
    feed: Feed | None = None,  # a feed loaded already (`python -m connectors.simulators --records-file`)
) -> SimLayer:
    app, sim = new_app("complaints", token, faults, seed)
    feed = feed or Feed()
    for rec in records or []:
        feed.put(rec)

    @app.get("/api/v1/complaints/changes")
    async def changes(cursor: str | None = None, limit: int = Query(100, ge=1, le=1000)) -> Any:
        try:
            after = decode_cursor(cursor) if cursor else 0
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        items, last, has_more = feed.page(after, limit)
        # The records' texts joined: no per-value encoding of pages of 1000 records.
        tail = json.dumps({"next_cursor": encode_cursor(max(last, after)), "has_more": has_more})
        body = b'{"items":[' + b",".join(items) + b"]," + tail[1:].encode()
        return Response(body, media_type="application/json")

    @app.get("/api/v1/complaints/{complaint_id}")
    async def get_complaint(complaint_id: str) -> Any:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", complaint_id) or complaint_id not in feed.records:
            return JSONResponse({"error": "no such complaint"}, status_code=404)
        return Response(feed.records[complaint_id], media_type="application/json")

    @app.post("/_sim/records")
    async def put_records(request: Request) -> Any:
        body = await request.json()
        items = body.get("items") if isinstance(body, dict) else body
        if not isinstance(items, list):
            return JSONResponse({"error": 'body must be {"items": [...]} or a list'}, status_code=400)
        last = 0
        for item in items:
            last = feed.put(item)
        return {"accepted": len(items), "last_cursor": encode_cursor(last) if items else None}

    @app.get("/_sim/records/count")
    async def count() -> dict[str, int]:
        return {"records": len(feed.records), "changes": len(feed.log)}

    layer = SimLayer(app, sim, route_key)
    layer.data = feed
    return layer
