"""The migrations and the tables in the code describe the same schema: Alembic's autogenerate, run against a
database migrated to head, finds nothing to do (SQLite, and PostgreSQL when GATEWAY_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

import gateway
from gateway.core.db import make_engine
from gateway.core.migrate import MIGRATIONS, migrate
from gateway.core.models import Base
from tests import databases
from tests.conftest import BACKENDS, Database, open_database


def model_modules() -> list[str]:
    """Every domain's `models` module: each package of the gateway keeps its tables there."""
    found = ["gateway.core.models"]
    for package in pkgutil.iter_modules(gateway.__path__):
        if package.ispkg and (Path(gateway.__path__[0]) / package.name / "models.py").exists():
            found.append(f"gateway.{package.name}.models")
    return sorted(set(found))


def test_alembic_sees_every_domains_tables() -> None:
    env = (MIGRATIONS / "env.py").read_text(encoding="utf-8")
    imported = set(re.findall(r"^import (gateway\.\w+\.models)", env, flags=re.M)) | {"gateway.core.models"}
    assert imported == set(model_modules())


async def test_autogenerate_finds_nothing_to_do(db: Database) -> None:
    for name in model_modules():
        importlib.import_module(name)

    def compare(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata))

    async with db.engine.connect() as conn:
        diff = await conn.run_sync(compare)
    assert diff == []


def shape(conn: Connection) -> dict[str, Any]:
    """What a database holds, as reflected: tables with their columns, indexes, keys and checks, and rows
    of the alembic_version table."""
    inspector = inspect(conn)
    out: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        out[table] = (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted((i["name"] or "", tuple(i["column_names"]), bool(i["unique"]))
                   for i in inspector.get_indexes(table)),
            inspector.get_pk_constraint(table)["constrained_columns"],
            sorted((f["referred_table"], tuple(f["constrained_columns"])) for f in inspector.get_foreign_keys(table)),
            sorted((u["name"] or "", tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
        )
    out["alembic_version"] = list(conn.execute(text("SELECT version_num FROM alembic_version")))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_test_database_is_what_the_migrations_build(backend: str, tmp_path: Path) -> None:
    """The suite's databases are copies of one migrated template (tests/databases.py): each must equal a
    database the migrations build from nothing, in every table, column, index and key."""
    async with open_database(backend, tmp_path / "copy.db") as copy:
        if backend == "postgresql":  # an empty schema of its own for the real migration
            schema = f"m_{uuid.uuid4().hex[:12]}"
            await databases.execute(databases.PG_URL or "", f'CREATE SCHEMA "{schema}"')
            url = databases.with_schema(databases.PG_URL or "", schema)
        else:
            url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
        engine = make_engine(url)
        try:
            await migrate(engine)
            async with engine.connect() as conn:
                migrated = await conn.run_sync(shape)
            async with copy.engine.connect() as conn:
                copied = await conn.run_sync(shape)
        finally:
            await engine.dispose()
            databases.drop(url)
    assert copied == migrated and len(migrated) > 10


def test_each_migration_file_is_named_after_its_revision() -> None:
    from alembic.script import ScriptDirectory

    from gateway.core.migrate import alembic_config, head_revision

    for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"):
        revision = re.search(r'^revision = "([^"]+)"', path.read_text(encoding="utf-8"), flags=re.M)
        assert revision and revision.group(1) == path.name.split("_", 1)[0], path.name
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


# Migrating a database already at head (what every command does first) reads one row and loads no Alembic.
_MIGRATE_AGAIN = """
import asyncio, sys
from gateway.core.db import make_engine
from gateway.core.migrate import migrate
async def main():
    engine = make_engine(sys.argv[1])
    await migrate(engine)
    await engine.dispose()
asyncio.run(main())
print("alembic" in sys.modules)
"""


def test_a_database_at_head_is_migrated_without_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"

    def migrate_in_a_new_process() -> str:
        return subprocess.run([sys.executable, "-c", _MIGRATE_AGAIN, url], check=True, capture_output=True,
                              text=True).stdout.strip()

    assert migrate_in_a_new_process() == "True"  # a new database: Alembic builds it
    assert migrate_in_a_new_process() == "False"  # at head: nothing to do, one read
