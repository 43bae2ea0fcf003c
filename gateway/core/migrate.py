"""Bringing a database to the newest schema with Alembic, on the gateway's own async engine.

Every command that opens the store migrates it first (`auto_migrate`), so the common case, a database
already at the newest revision, is answered without Alembic: the revision the database is at is read from
its version table, and the newest one is that of the newest migration file (each file is named after its
revision, `0015_….py`: tests/core/test_migrations.py holds the names to Alembic's own reading). Alembic,
and the parsing of every migration script, is loaded only when there is something to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent.parent / "migrations"  # gateway/migrations: its env.py sees every domain


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision of the migrations shipped with the gateway: the one the newest migration file is
    named after (`0015_ingest_foreign_keys.py` → "0015")."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the database to the newest revision, in one transaction on the engine's own connection;
    nothing but a read when it is there already."""
    if await current_revision(engine) == head_revision():
        return

    def upgrade(conn: Connection) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration. Database errors propagate (a
    database that cannot be reached is not "before the first migration")."""
    async with engine.connect() as conn:
        if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return None
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
