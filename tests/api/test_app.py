"""The application as one process: one set of connectors, shared by GraphQL and the outbox dispatcher."""

from __future__ import annotations

import asyncio
import socket

import httpx

from gateway.api.app import create_app
from gateway.core.settings import Settings
from tests.conftest import Database
from tests.factories import load_units
from tests.flags.support import rec, store

SECRET = "app-test-secret-of-at-least-32-bytes"


def closed_port() -> int:
    """A loopback port nothing listens on: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_dispatcher_failures_open_the_circuit_readyz_shows(db: Database) -> None:
    """The background dispatcher sends through the server's own credit connector: when the credit system
    refuses every delivery, its one circuit breaker opens and /readyz says so (with a connector of its own,
    the dispatcher's breaker opened unseen while /readyz showed the idle GraphQL one as closed)."""
    await load_units(db.sessionmaker)
    await store(db, [rec(f"CB-{i}", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="FOOD",
                         kind="INQUIRY") for i in range(4)])  # four CRITICAL_SAFETY flags for the credit system
    settings = Settings(
        database_url=db.url, jwt_secret=SECRET, credit_url=f"http://127.0.0.1:{closed_port()}",  # type: ignore[arg-type]
        credit_token="t", connector_attempts=1, connector_timeout_s=0.5, connector_budget_s=1.0,  # type: ignore[arg-type]
        circuit_min_calls=2, circuit_open_s=60, dispatch_interval_s=0.05, dispatch_backoff_base_s=0.01,
        dispatch_backoff_max_s=0.05,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as client:
        assert app.state.graphql.upstreams is app.state.upstreams
        states: list[str] = []
        for _ in range(200):
            body = (await client.get("/readyz")).json()
            states.append(body["systems"]["credit"])
            if states[-1] == "open":
                break
            await asyncio.sleep(0.05)
        assert states[-1] == "open", states[-5:]
        assert body["systems"]["emergency"] == "not_configured"
