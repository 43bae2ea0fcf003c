"""Fresh, migrated databases for tests, fast: the migrations run once per test process, into a template,
and every test's database is a copy of it (an SQLite file copied; a PostgreSQL schema recreated from the
template's `pg_dump`). Running Alembic for each of a thousand tests cost minutes of the suite; a copy
costs milliseconds. Tests of the migrations themselves (tests/core/test_migrations.py) run Alembic for
real and do not come here.

`create(backend, sqlite_file)` gives a database's URL (usable by subprocesses); `drop(url)` removes a
PostgreSQL schema again. The PostgreSQL template schema is dropped as soon as it is dumped; the SQLite
template file when the process exits.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import make_url

from gateway.core.db import make_engine
from gateway.core.migrate import migrate

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
T = TypeVar("T")

_lock = threading.Lock()
_sqlite_template: Path | None = None
_pg_script: str | None = None  # the template schema's dump, its name replaced by TOKEN
TOKEN = "__gateway_test_schema__"


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync or async code alike (a thread of its own has no loop)."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(asyncio.run(make())))  # type: ignore[arg-type]
    thread.start()
    thread.join()
    if not box:
        raise RuntimeError("the database work failed (see the thread's traceback above)")
    return box[0]  # type: ignore[no-any-return]


def with_schema(base: str, schema: str) -> str:
    """`base` (a PostgreSQL URL) with every connection's search_path set to `schema`."""
    return f"{base}{'&' if '?' in base else '?'}search_path={schema}"


async def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


async def execute(url: str, *statements: str, script: bool = False) -> None:
    """Run SQL on `url` in one transaction; `script=True` sends each as a multi-statement script."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                if script:  # asyncpg's simple query protocol takes many statements at once
                    raw = await conn.get_raw_connection()
                    await raw.driver_connection.execute(statement)  # type: ignore[union-attr]
                else:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _sqlite() -> Path:
    global _sqlite_template
    with _lock:
        if _sqlite_template is None:
            directory = Path(tempfile.mkdtemp(prefix="gateway-template-"))
            atexit.register(shutil.rmtree, directory, True)
            path = directory / "template.db"
            _run(lambda: _migrate(f"sqlite+aiosqlite:///{path}"))
            _sqlite_template = path
        return _sqlite_template


def _postgresql() -> str:
    global _pg_script
    with _lock:
        if _pg_script is None:
            assert PG_URL
            schema = f"tpl_{uuid.uuid4().hex[:12]}"
            _run(lambda: execute(PG_URL, f'CREATE SCHEMA "{schema}"'))
            try:
                _run(lambda: _migrate(with_schema(PG_URL, schema)))
                _pg_script = _dump(schema).replace(schema, TOKEN)
            finally:
                _run(lambda: execute(PG_URL, f'DROP SCHEMA "{schema}" CASCADE'))
        return _pg_script


def _dump(schema: str) -> str:
    """The schema's DDL and rows as plain SQL (rows as INSERTs: a script cannot carry COPY's data)."""
    url = make_url(PG_URL or "")
    args = ["pg_dump", "--schema", schema, "--no-owner", "--no-privileges", "--inserts",
            "--dbname", url.database or "postgres"]
    for flag, value in (("--host", url.host), ("--port", url.port), ("--username", url.username)):
        if value:
            args += [flag, str(value)]
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    dump = subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout
    # psql's meta-commands (\restrict … in newer pg_dump) are for psql; the server never sees them.
    return re.sub(r"(?m)^\\.*$", "", dump)


def create(backend: str, sqlite_file: Path) -> str:
    """A new database at the newest migration: SQLite at `sqlite_file`, or a new PostgreSQL schema under
    GATEWAY_TEST_DATABASE_URL. Returns its URL."""
    if backend == "sqlite":
        shutil.copyfile(_sqlite(), sqlite_file)
        return f"sqlite+aiosqlite:///{sqlite_file}"
    assert PG_URL, "PostgreSQL tests need GATEWAY_TEST_DATABASE_URL"
    schema = f"t_{uuid.uuid4().hex[:12]}"
    script = _postgresql().replace(TOKEN, schema)
    _run(lambda: execute(PG_URL, script, script=True))
    return with_schema(PG_URL, schema)


async def create_async(backend: str, sqlite_file: Path) -> str:
    """`create`, from async code: the copy runs in a thread, so the event loop is not held."""
    return await asyncio.to_thread(create, backend, sqlite_file)


def schema_of(url: str) -> str | None:
    """The PostgreSQL schema a `create` URL names, or None for SQLite."""
    found = re.search(r"search_path=([A-Za-z0-9_]+)", url)
    return found.group(1) if found and url.startswith("postgresql") else None


def drop(url: str) -> None:
    """Remove a database `create` made (PostgreSQL: its schema; an SQLite file goes with its directory)."""
    schema = schema_of(url)
    if schema is not None and PG_URL:
        _run(lambda: execute(PG_URL, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
