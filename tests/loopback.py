"""The gateway served for real on loopback (uvicorn in a thread, lifespan on), for tests that must go
through HTTP rather than an in-process transport; and databases that outlive one test, for fixtures that
serve many (property tests, read-mostly suites)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.api.app import create_app
from gateway.core.db import make_engine, make_sessionmaker
from gateway.core.settings import Settings
from tests import databases


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """An ASGI app served on loopback by uvicorn in a thread (lifespan on) until the block ends; yields its base
    URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def serve(settings: Settings) -> AbstractContextManager[str]:
    """The gateway app with `settings`, served as `serve_app` serves it."""
    return serve_app(create_app(settings))


@contextmanager
def scratch_database(backend: str, directory: Path) -> Iterator[str]:
    """A migrated database for a fixture wider than one test (the `db` fixture is per test): an SQLite file
    in `directory`, or a PostgreSQL schema of its own under GATEWAY_TEST_DATABASE_URL, dropped afterwards.
    Yields its URL."""
    url = databases.create(backend, directory / "gateway.db")
    try:
        yield url
    finally:
        databases.drop(url)


def run_with_sessionmaker(url: str, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[Any]]) -> Any:
    """`work(sessionmaker)` on a database, from synchronous code (a wide fixture), in a loop of its own."""

    async def main() -> Any:
        engine = make_engine(url)
        try:
            return await work(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())
