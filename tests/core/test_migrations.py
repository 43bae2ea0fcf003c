"""The migrations and the tables in the code describe the same schema: Alembic's autogenerate, run against a
database migrated to head, finds nothing to do (SQLite, and PostgreSQL when GATEWAY_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

import gateway
from gateway.core.migrate import MIGRATIONS
from gateway.core.models import Base
from tests.conftest import Database


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
