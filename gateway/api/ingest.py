"""`POST /api/v1/ingest/complaints`: the complaint platform's signed push (interfaces.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.api import openapi
from gateway.core.db import transaction
from gateway.ingest.store import ingest_raw

router = APIRouter()

MAX_ITEMS = 1000


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/api/v1/ingest/complaints", response_model=None, **openapi.INGEST)
async def ingest_complaints(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    if settings.ingest_secret is None:
        return _error(404, "NOT_FOUND", "push ingest is off: GATEWAY_INGEST_SECRET is not set")
    body = await _read_limited(request, settings.ingest_max_bytes)
    if body is None:
        return _error(413, "PAYLOAD_TOO_LARGE", f"body over {settings.ingest_max_bytes} bytes")
    secret = settings.ingest_secret.get_secret_value().encode()
    if not signature_ok(secret, body, request.headers.get("x-signature")):
        return _error(401, "UNAUTHENTICATED", "missing or wrong X-Signature (sha256=<hex HMAC-SHA256 of the body>)")
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, "BAD_USER_INPUT", f"body is not valid JSON: {exc}")
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        return _error(400, "BAD_USER_INPUT", 'body must be {"items": [ComplaintRecord, ...]}')
    items = payload["items"]
    if len(items) > MAX_ITEMS:
        return _error(413, "PAYLOAD_TOO_LARGE", f"at most {MAX_ITEMS} items per push, got {len(items)}")
    async with transaction(request.app.state.sessionmaker) as session:
        result = await ingest_raw(session, items, source="push")
    return JSONResponse(
        {
            "stored": result.stored,
            "rejected": [{"index": r.index, "id": r.id, "reason": r.reason} for r in result.rejected],
        }
    )
