"""The live feed's test client: graphql-transport-ws over a real WebSocket (the `websockets` library) to a
gateway served on loopback (tests/browser.py serves it)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from gateway.core.auth import mint_token

SECRET = "live-feed-test-secret-long-enough-for-hs256"
PROTOCOL = "graphql-transport-ws"
ALERTS = """subscription A($unit: String!, $kinds: [AlertKind!]) {
  alerts(unit: $unit, kinds: $kinds) { kind at unit { code name } complaintIds detail } }"""


def token(unit: str, roles: str = "supervisor", ttl: int = 600) -> str:
    return mint_token(SECRET, "watcher", unit, roles.split(","), ttl)


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def closed_with(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    """The close code the server ends the connection with (messages before it are skipped)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except Exception:
        pass
    return ws.close_code


async def open_feed(url: str, bearer: str) -> ClientConnection:
    """A connection past connection_init / connection_ack."""
    ws = await connect(url, subprotocols=[PROTOCOL])  # type: ignore[list-item]
    await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {bearer}"}})
    assert await receive(ws) == {"type": "connection_ack"}
    return ws


async def subscribe(ws: ClientConnection, op_id: str, unit: str, kinds: list[str] | None = None) -> None:
    """Subscribe, then ping: the server handles messages in order, so the pong means the subscription is in
    place (or refused: an error message arrives before the pong)."""
    variables: dict[str, Any] = {"unit": unit}
    if kinds is not None:
        variables["kinds"] = kinds
    await send(ws, {"id": op_id, "type": "subscribe", "payload": {"query": ALERTS, "variables": variables}})
    await send(ws, {"type": "ping"})


async def synced(ws: ClientConnection) -> list[dict[str, Any]]:
    """Messages up to the next pong."""
    out = []
    while (message := await receive(ws))["type"] != "pong":
        out.append(message)
    return out
