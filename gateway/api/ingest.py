"""`POST /api/v1/ingest/complaints`: the complaint platform's signed push (interfaces.md)."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.api import openapi
from gateway.core.db import transaction
from gateway.core.jsontext import JSONInputError, decode
from gateway.ingest.store import ingest_raw

router = APIRouter()

MAX_ITEMS = 1000


def sign(secret: bytes, body: bytes, t: int) -> str:
    """The X-Signature value for `body` sent at unix time `t` (seconds): `t=<t>,v1=<hex HMAC-SHA256 of
    "<t>.<body>">` (interfaces.md 1.1). The complaint platform's side; here for tests and tools."""
    mac = hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def signature_problem(secret: bytes, body: bytes, header: str | None, now: float, tolerance_s: float) -> str | None:
    """Why the push's X-Signature does not hold (None when it does): it must be `t=<unix seconds>,v1=<hex>`,
    `t` within `tolerance_s` of `now`, and one `v1` the HMAC of "<t>.<body>". Several `v1` may be given (a
    platform rotating its key); the 1.0 form `sha256=<hex>` signs no time and is refused."""
    if not header:
        return "missing X-Signature"
    t_text, macs = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            t_text = value.strip()
        elif key == "v1":
            macs.append(value.strip().lower())
    if t_text is None or not t_text.isascii() or not t_text.isdigit() or len(t_text) > 12 or not macs:
        return "X-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">"
    if abs(now - int(t_text)) > tolerance_s:
        return f"X-Signature timestamp is more than {tolerance_s:g} s from the gateway's clock"
    expected = hmac.new(secret, t_text.encode() + b"." + body, hashlib.sha256).hexdigest()
    # compare_digest on str needs ASCII; a non-ASCII value cannot match anyway.
    if not any(mac.isascii() and hmac.compare_digest(expected, mac) for mac in macs):
        return "X-Signature does not match the body"
    return None


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
    problem = signature_problem(secret, body, request.headers.get("x-signature"), time.time(),
                                settings.ingest_tolerance_s)
    if problem is not None:
        return _error(401, "UNAUTHENTICATED", problem)
    try:
        # Values JSON cannot hold (NaN, lone surrogates) are decoded, so that only the item holding one is
        # rejected, by field; a body that is not JSON at all is refused whole.
        payload: Any = decode(body)
    except JSONInputError as exc:
        return _error(400, "BAD_USER_INPUT", f"body is {exc}")
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
