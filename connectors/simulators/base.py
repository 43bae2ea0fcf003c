"""What every simulator shares: the bearer-token check, request counters, the idempotency ledger, and fault
injection, all in one outer ASGI layer so faults can act below HTTP (connection resets, truncated bodies).

Control routes (never faulted, never authenticated), on every simulator:
  GET  /_sim/stats      counts per route, effects, idempotent replays, faults injected
  GET  /_sim/requests   the recent API requests with their headers of interest
  POST /_sim/reset      zero the counters and restore the start-up faults (data is kept)
  GET  /_sim/faults     the current faults;  POST /_sim/faults  replace them (JSON body of `Faults`)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import socket
import struct
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.types import Message, Receive, Scope, Send


class Canned(BaseModel):
    """An answer of the test's choosing, for the "canned" fault: any status, headers and body through the
    server (`status`, `headers`, `body` or `body_b64`; Content-Type defaults to JSON, Content-Length is set
    unless given), or, with `raw_b64`, any bytes at all written to the socket as the answer (status line and
    headers included, framing as broken as wanted), after which the connection is closed. `drip_s` sends the
    body (or the raw bytes) `drip_bytes` at a time with that pause between: an answer that trickles."""

    status: int = Field(default=200, ge=100, le=999)
    headers: list[tuple[str, str]] = Field(default_factory=list)
    body: str = ""
    body_b64: str | None = None
    raw_b64: str | None = None
    drip_s: float = Field(default=0, ge=0)
    drip_bytes: int = Field(default=1, ge=1)

    def body_bytes(self) -> bytes:
        return base64.b64decode(self.body_b64) if self.body_b64 is not None else self.body.encode()


class Faults(BaseModel):
    """What goes wrong, applied to /api/ requests only. `script` is consumed first, one entry per request;
    then the rates apply. An entry or outage is "ok" (no fault), a status ("503"), "reset" (TCP RST before
    answering), "close" (FIN, no answer), "hang" (answer after `hang_s`), "malformed" (200 with invalid
    JSON), "badshape" (200, valid JSON of the wrong shape), "truncate" (headers, half the body, then RST),
    "canned" (the next answer of `canned`: each is served once, the last one again and again), or any of
    these suffixed "-after": the request is processed first (the effect happens), then the answer is lost
    or replaced that way."""

    latency_ms: float = Field(default=0, ge=0)
    jitter_ms: float = Field(default=0, ge=0)  # uniform 0..jitter added to latency
    error_rate: float = Field(default=0, ge=0, le=1)
    error_status: int = 503
    throttle_rate: float = Field(default=0, ge=0, le=1)
    throttle_status: int = 429
    retry_after: float | None = None  # seconds, sent as Retry-After with 429 and 503
    outage: str | None = None  # every request fails this way: "503", "reset", ...
    reset_rate: float = Field(default=0, ge=0, le=1)
    malformed_rate: float = Field(default=0, ge=0, le=1)
    truncate_rate: float = Field(default=0, ge=0, le=1)
    hang_s: float = 30.0
    script: list[str] = Field(default_factory=list)
    canned: list[Canned] = Field(default_factory=list)


@dataclass
class Ledgered:
    fingerprint: str
    body: dict[str, Any]


@dataclass
class SimState:
    system: str
    token: str | None
    faults: Faults
    start_faults: Faults
    requests: Counter[str] = field(default_factory=Counter)
    effects: Counter[str] = field(default_factory=Counter)
    replays: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    counters: Counter[str] = field(default_factory=Counter)  # system-specific, e.g. duplicate flag ids
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5000))
    ledger: dict[tuple[str, str], Ledgered] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def reset(self) -> None:
        for c in (self.requests, self.effects, self.replays, self.injected, self.counters):
            c.clear()
        self.recent.clear()
        self.faults = self.start_faults.model_copy(deep=True)

    def stats(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "requests": dict(self.requests),
            "total_requests": sum(self.requests.values()),
            "effects": dict(self.effects),
            "replays": dict(self.replays),
            "faults_injected": dict(self.injected),
            "counters": dict(self.counters),
        }

    def next_fault(self) -> str | None:
        f = self.faults
        if f.script:
            action = f.script.pop(0)
            return None if action == "ok" else action
        if f.outage:
            return f.outage
        draw = self.rng.random
        for rate, action in (
            (f.reset_rate, "reset"),
            (f.error_rate, str(f.error_status)),
            (f.throttle_rate, str(f.throttle_status)),
            (f.malformed_rate, "malformed"),
            (f.truncate_rate, "truncate"),
        ):
            if rate and draw() < rate:
                return action
        return None


# ---------------------------------------------------------------------------------------------- writes


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def idempotent_write(
    sim: SimState, request: Request, route: str, act: Callable[[Any], dict[str, Any] | JSONResponse]
) -> JSONResponse:
    """Idempotency-Key semantics: the first request acts and answers 201; a repeat of the key answers 200
    with the first body and acts not again; the same key with a different body is a conflict (409)."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        return JSONResponse({"error": "Idempotency-Key header required"}, status_code=400)
    raw = await request.body()
    fp = fingerprint(raw)
    seen = sim.ledger.get((route, key))
    if seen is not None:
        if seen.fingerprint != fp:
            return JSONResponse({"error": "Idempotency-Key reused with a different body"}, status_code=409)
        sim.replays[route] += 1
        return JSONResponse(seen.body, status_code=200)
    try:
        payload = json.loads(raw)
    except ValueError:
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    result = act(payload)
    if isinstance(result, JSONResponse):  # refused (422): not recorded, the caller may fix and resend
        return result
    # No await between the ledger lookup and here: one event loop, so two requests with one key can't both act.
    sim.ledger[(route, key)] = Ledgered(fp, result)
    sim.effects[route] += 1
    return JSONResponse(result, status_code=201)


def split_ids(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def too_many(ids: list[str], limit: int = 100) -> JSONResponse | None:
    if len(ids) > limit:
        return JSONResponse({"error": f"at most {limit} ids per request"}, status_code=400)
    return None


def unprocessable(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=422)


# ---------------------------------------------------------------------------------------------- the app


def new_app(system: str, token: str | None, faults: Faults | None, seed: int | None) -> tuple[FastAPI, SimState]:
    """A FastAPI app with the control routes; the system module adds its API and wraps it in `SimLayer`."""
    start = faults or Faults()
    sim = SimState(system, token, start.model_copy(deep=True), start, rng=random.Random(seed))
    app = FastAPI(title=f"{system} simulator", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/_sim/stats")
    async def stats() -> dict[str, Any]:
        return sim.stats()

    @app.get("/_sim/requests")
    async def requests() -> list[dict[str, Any]]:
        return list(sim.recent)

    @app.post("/_sim/reset")
    async def reset() -> dict[str, Any]:
        sim.reset()
        return sim.stats()

    @app.get("/_sim/faults")
    async def get_faults() -> dict[str, Any]:
        return sim.faults.model_dump()

    @app.post("/_sim/faults")
    async def set_faults(faults: Faults) -> dict[str, Any]:
        sim.faults = faults
        return sim.faults.model_dump()

    return app, sim


class SimLayer:
    """The ASGI app uvicorn serves: auth, counters and faults around the FastAPI app of one system."""

    def __init__(self, app: FastAPI, sim: SimState, route_key: Callable[[str, str], str]) -> None:
        self.app = app
        self.sim = sim
        self.route_key = route_key
        self.data: Any = None  # the system's own store, for in-process users (the demo, tests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        sim = self.sim
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        route = self.route_key(scope["method"], scope["path"])
        sim.requests[route] += 1
        fault = sim.next_fault()
        sim.recent.append({
            "route": route,
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "request_id": headers.get("x-request-id"),
            "idempotency_key": headers.get("idempotency-key"),
            "authorization": headers.get("authorization"),
            "fault": fault,
        })
        f = sim.faults
        delay = (f.latency_ms + (sim.rng.uniform(0, f.jitter_ms) if f.jitter_ms else 0)) / 1000
        if delay:
            await asyncio.sleep(delay)
        if fault:
            sim.injected[fault] += 1
            after = fault.endswith("-after")
            action = fault.removesuffix("-after")
            if after or action in ("malformed", "badshape", "truncate"):
                # The request is processed (writes act); only the answer goes wrong.
                status, body = await self._run_captured(scope, receive, headers)
                await self._fail(action, send, body)
                return
            await self._fail(action, send, b"")
            return
        if sim.token and headers.get("authorization") != f"Bearer {sim.token}":
            await _send_json(send, 401, {"error": "missing or wrong bearer token"})
            return
        await self.app(scope, receive, send)

    async def _run_captured(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.sim.token and headers.get("authorization") != f"Bearer {self.sim.token}":
            return 401, b""
        status, chunks = 500, []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        return status, b"".join(chunks)

    async def _fail(self, action: str, send: Send, body: bytes) -> None:
        f = self.sim.faults
        if action.isdigit():
            extra: list[tuple[bytes, bytes]] = []
            if f.retry_after is not None and action in ("429", "503"):
                extra.append((b"retry-after", f"{f.retry_after:g}".encode()))
            await _send_json(send, int(action), {"error": f"injected fault {action}"}, extra)
        elif action == "hang":
            await asyncio.sleep(f.hang_s)
            await _send_json(send, 503, {"error": "injected hang"})
        elif action == "malformed":
            await _send_raw(send, 200, b'{"items": [{"id": "broken", ')
        elif action == "badshape":
            await _send_json(send, 200, {"unexpected": "shape"})
        elif action == "truncate":
            body = body or b'{"error": "nothing to truncate"}'
            await send({
                "type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            })
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            _reset(send)
        elif action == "close":
            _reset(send, graceful=True)
        elif action == "canned" and f.canned:
            canned = f.canned.pop(0) if len(f.canned) > 1 else f.canned[0]
            await _send_canned(send, canned)
        else:  # "reset" and anything unknown: drop the connection with a TCP RST
            _reset(send)


async def _send_canned(send: Send, canned: Canned) -> None:
    if canned.raw_b64 is not None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None:
            raise ConnectionResetError("cannot write raw bytes (no transport)")
        raw = base64.b64decode(canned.raw_b64)
        step = canned.drip_bytes if canned.drip_s else len(raw) or 1
        for i in range(0, len(raw), step):
            if transport.is_closing():
                return
            transport.write(raw[i : i + step])
            if canned.drip_s:
                await asyncio.sleep(canned.drip_s)
        transport.close()
        _answered_by_hand(send)
        return
    body = canned.body_bytes()
    headers = [(k.lower().encode(), v.encode()) for k, v in canned.headers]
    names = {k for k, _ in headers}
    if b"content-type" not in names:
        headers.append((b"content-type", b"application/json"))
    if b"content-length" not in names and b"transfer-encoding" not in names:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": canned.status, "headers": headers})
    if not canned.drip_s:
        await send({"type": "http.response.body", "body": body})
        return
    for i in range(0, len(body), canned.drip_bytes):
        await send({"type": "http.response.body", "body": body[i : i + canned.drip_bytes], "more_body": True})
        await asyncio.sleep(canned.drip_s)
    await send({"type": "http.response.body", "body": b""})


async def _send_raw(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, data: Any, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _send_raw(send, status, json.dumps(data, ensure_ascii=False).encode(), extra)


def _answered_by_hand(send: Send) -> None:
    """Tell uvicorn's request cycle that the answer went out (it went straight to the socket), so that it
    neither logs "returned without starting response" nor tries a 500 on the closed connection."""
    cycle = getattr(send, "__self__", None)
    if cycle is not None and hasattr(cycle, "response_complete"):
        cycle.response_started = cycle.response_complete = True


def _reset(send: Send, graceful: bool = False) -> None:
    """Drop the connection under this request. uvicorn's `send` is a bound method of its per-request cycle,
    which holds the transport; SO_LINGER 0 turns the close into a RST, as a crashed peer or a middlebox does.
    `graceful` closes it (FIN) instead, as a server going down between requests does."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionResetError("injected reset (no transport to abort)")
    _answered_by_hand(send)
    if graceful:
        transport.close()
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except Exception:  # noqa: BLE001 - some event loops wrap the socket; a plain close still breaks it
            pass
    transport.abort()


def json_response(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status)
