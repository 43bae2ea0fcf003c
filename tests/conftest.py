"""Shared fixtures. `db` gives every test a fresh, migrated database: SQLite always, and PostgreSQL too
when GATEWAY_TEST_DATABASE_URL is set (each test in a schema of its own, dropped afterwards); each a copy
of one migrated template (tests/databases.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.core.db import make_engine, make_sessionmaker
from tests import databases

PG_URL = databases.PG_URL
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@dataclass
class Database:
    backend: str
    url: str  # usable by subprocesses (GATEWAY_DATABASE_URL)
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "GATEWAY_DATABASE_URL": self.url, **extra}


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(request.param, tmp_path / "gateway.db") as database:
        yield database


@asynccontextmanager
async def open_database(backend: str, sqlite_file: Path) -> AsyncIterator[Database]:
    """A fresh database of `backend` at the newest migration (SQLite at `sqlite_file`; PostgreSQL in a schema
    of its own), removed afterwards. A copy of one migrated template: see tests/databases.py."""
    url = await databases.create_async(backend, sqlite_file)
    engine = make_engine(url)
    try:
        yield Database(backend, url, engine, make_sessionmaker(engine))
    finally:
        await engine.dispose()
        await asyncio.to_thread(databases.drop, url)
