"""Bringing a database to the newest schema with Alembic, on the gateway's own async engine.

Every command that opens the store migrates it first (`auto_migrate`), so the common case, a database
already at the newest revision, is answered without Alembic: its version table read with one query and
compared with the newest migration file's revision (each file is named after its revision, `0015_….py`:
tests/core/test_migrations.py holds the two together). Alembic, and the parsing of every migration script,
is loaded only when there is something to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent.parent / "migrations"  # gateway/migrations: its env.py sees every domain


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    """The newest revision of the migrations shipped with the gateway (exactly one head)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def newest_file_revision() -> str:
    """The revision the newest migration file is named after (`0015_ingest_foreign_keys.py` → "0015")."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the database to the newest revision, in one transaction on the engine's own connection;
    nothing but one read when it is there already."""
    if await _stored_revision(engine) == newest_file_revision():
        return

    def upgrade(conn: Connection) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def _stored_revision(engine: AsyncEngine) -> str | None:
    """alembic_version's revision, None without the table (a new database) or without a row."""
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except DBAPIError:  # no such table yet
        return None


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    def read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)
