"""Alembic environment. Migrations run on a connection the gateway hands in (see gateway/core/migrate.py)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import gateway.complaints.models  # noqa: F401  (every domain's tables join Base.metadata for autogenerate)
import gateway.flags.models  # noqa: F401
import gateway.reports.models  # noqa: F401
import gateway.supervision.models  # noqa: F401
import gateway.units.models  # noqa: F401
from gateway.core.db import make_engine
from gateway.core.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic upgrade head` with sqlalchemy.url set
    asyncio.run(_run_with_own_engine(context.config.get_main_option("sqlalchemy.url") or ""))
