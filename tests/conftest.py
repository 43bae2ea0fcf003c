"""Shared fixtures. `db` gives every test a fresh, migrated database: SQLite always, and PostgreSQL too
when GATEWAY_TEST_DATABASE_URL is set (each test in a schema of its own, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.core.db import make_engine, make_sessionmaker
from gateway.core.migrate import migrate

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
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
    """A fresh, migrated database of `backend` (SQLite at `sqlite_file`), removed afterwards."""
    schema = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{sqlite_file}"
    else:
        assert PG_URL
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = make_engine(PG_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.dispose()
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}search_path={schema}"
    engine = make_engine(url)
    await migrate(engine)
    try:
        yield Database(backend, url, engine, make_sessionmaker(engine))
    finally:
        await engine.dispose()
        if schema:
            admin = make_engine(PG_URL or "")
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()
