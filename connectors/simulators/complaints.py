"""Complaint platform simulator: a changes feed over its records, and records by id.

The feed is a log of change sequence numbers: every put of a record appends a new number, and a page
returns the records whose latest change is after the cursor, oldest first, each whole and current. So a
record changed twice before a page is read appears once, and again in a later page if it changes again.
The cursor is opaque to clients: base64 of "v1:<sequence number>".

Records carry their version, `updated_at` (records.md 1.1). The platform also pushes: it POSTs
{"items": [...]} (at most 1000 a request) to the gateway's ingest endpoint, signed (interfaces.md 1.1)
`X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` — see `sign` and `push`.

Extra control routes:
  POST /_sim/records {"items": [...], "stamp": false}  adds or replaces records, taken raw (so tests can feed
      broken ones); with "stamp": true each record's `updated_at` is set to now, as the platform does when it
      changes a record. When the simulator was made with a push URL and secret, the records are pushed too.
  POST /_sim/push {"url", "secret", "ids": [...] | "items": [...], "t": null}  push these records (by id
      from the feed, or raw items) now, signed at `t` (default: now); answers what the receiver answered.
  GET  /_sim/records/count
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import Query, Request
from fastapi.responses import JSONResponse

from connectors.simulators.base import Faults, SimLayer, new_app
from connectors.simulators.data import CST

PUSH_MAX_ITEMS = 1000  # external-systems.md: at most 1000 records a push


def sign(secret: str | bytes, body: bytes, t: int | None = None) -> str:
    """The `X-Signature` of a push: "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>' keyed with secret>".
    Signing the time with the body lets the receiver refuse a replay once `t` is out of its tolerance."""
    key = secret.encode() if isinstance(secret, str) else secret
    t = int(time.time()) if t is None else t
    mac = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def push_body(items: list[Any]) -> bytes:
    """The raw body of a push, as the platform encodes it (UTF-8, Chinese as is)."""
    return json.dumps({"items": items}, ensure_ascii=False, separators=(",", ":")).encode()


async def push(
    url: str, secret: str | bytes, items: list[Any], *, t: int | None = None, timeout_s: float = 30.0
) -> list[httpx.Response]:
    """POST `items` to the gateway's ingest endpoint `url`, at most 1000 a request, each body signed at `t`
    (default: now). Returns the receiver's answers in order; raises httpx.HTTPError when it cannot be reached."""
    answers = []
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        for i in range(0, len(items), PUSH_MAX_ITEMS):
            body = push_body(items[i : i + PUSH_MAX_ITEMS])
            headers = {"Content-Type": "application/json", "X-Signature": sign(secret, body, t)}
            answers.append(await client.post(url, content=body, headers=headers))
    return answers


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
    def __init__(self) -> None:
        self.records: dict[str, Any] = {}
        self.latest: dict[str, int] = {}  # record key -> its latest change's sequence number
        self.log: list[str] = []  # log[seq - 1] is the key changed at seq

    def put(self, record: Any, stamp: bool = False) -> int:
        """Add or replace a record (raw); `stamp`: give it a new version, later than any it had."""
        seq = len(self.log) + 1
        if stamp and isinstance(record, dict):
            record["updated_at"] = self.version(record.get("id"))
        rid = record.get("id") if isinstance(record, dict) else None
        key = rid if isinstance(rid, str) else f"_anonymous-{seq}"  # broken records still travel the feed
        self.log.append(key)
        self.latest[key] = seq
        self.records[key] = record
        return seq

    def version(self, rid: Any) -> str:
        """Now, as an RFC 3339 `updated_at` (microseconds, +08:00), strictly after the record's current one."""
        now = datetime.now(UTC)
        old = self.records.get(rid) if isinstance(rid, str) else None
        try:
            previous = datetime.fromisoformat(old["updated_at"]) if isinstance(old, dict) else None
        except (KeyError, TypeError, ValueError):
            previous = None
        if previous is not None and previous.tzinfo is not None and previous >= now:
            now = previous + timedelta(microseconds=1)
        return now.astimezone(CST).isoformat(timespec="microseconds")

    def page(self, after: int, limit: int) -> tuple[list[Any], int, bool]:
        items: list[Any] = []
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
    push_url: str | None = None,
    push_secret: str | None = None,
) -> SimLayer:
    """The platform's app. With `push_url` and `push_secret`, records put through /_sim/records are also
    pushed there, signed, as the platform pushes the records it changes."""
    app, sim = new_app("complaints", token, faults, seed)
    feed = Feed()
    for rec in records or []:
        feed.put(rec)

    @app.get("/api/v1/complaints/changes")
    async def changes(cursor: str | None = None, limit: int = Query(100, ge=1, le=1000)) -> Any:
        try:
            after = decode_cursor(cursor) if cursor else 0
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        items, last, has_more = feed.page(after, limit)
        # A JSONResponse skips FastAPI's per-value encoder walk: pages of 1000 records are big.
        return JSONResponse({"items": items, "next_cursor": encode_cursor(max(last, after)), "has_more": has_more})

    @app.get("/api/v1/complaints/{complaint_id}")
    async def get_complaint(complaint_id: str) -> Any:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", complaint_id) or complaint_id not in feed.records:
            return JSONResponse({"error": "no such complaint"}, status_code=404)
        return feed.records[complaint_id]

    @app.post("/_sim/records")
    async def put_records(request: Request) -> Any:
        body = await request.json()
        items = body.get("items") if isinstance(body, dict) else body
        if not isinstance(items, list):
            return JSONResponse({"error": 'body must be {"items": [...]} or a list'}, status_code=400)
        stamp = isinstance(body, dict) and body.get("stamp") is True
        last = 0
        for item in items:
            last = feed.put(item, stamp=stamp)
        answer: dict[str, Any] = {"accepted": len(items), "last_cursor": encode_cursor(last) if items else None}
        if push_url and push_secret and items:
            answer["pushed"] = await _push_answers(push_url, push_secret, items, None)
        return answer

    @app.post("/_sim/push")
    async def push_now(request: Request) -> Any:
        body = await request.json()
        url = (body.get("url") if isinstance(body, dict) else None) or push_url
        if not isinstance(body, dict) or not isinstance(url, str):
            return JSONResponse({"error": 'body must be {"url", "secret", "ids" or "items", "t"}'}, status_code=400)
        secret = body.get("secret") or push_secret
        if not isinstance(secret, str):
            return JSONResponse({"error": "no secret to sign with"}, status_code=400)
        items = body.get("items")
        if items is None:
            items = [feed.records[i] for i in body.get("ids") or [] if i in feed.records]
        t = body.get("t")
        return {"pushed": await _push_answers(url, secret, items, t if isinstance(t, int) else None)}

    @app.get("/_sim/records/count")
    async def count() -> dict[str, int]:
        return {"records": len(feed.records), "changes": len(feed.log)}

    layer = SimLayer(app, sim, route_key)
    layer.data = feed
    return layer


async def _push_answers(url: str, secret: str, items: list[Any], t: int | None) -> list[dict[str, Any]]:
    try:
        answers = await push(url, secret, items, t=t)
    except httpx.HTTPError as exc:
        return [{"status": None, "error": f"{type(exc).__name__}: {exc}"}]
    out = []
    for resp in answers:
        try:
            content: Any = resp.json()
        except ValueError:
            content = resp.text[:1000]
        out.append({"status": resp.status_code, "body": content})
    return out
