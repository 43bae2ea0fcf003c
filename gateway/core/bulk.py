"""Bulk writes that skip rows whose key is already stored, fast on both databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from operator import itemgetter
from typing import Any

import asyncpg
from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


async def bulk_insert_ignoring_duplicates(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows, skipping those whose key is already stored.

    `rows` are dicts of column values, every column of the table present. On PostgreSQL the rows travel by
    binary COPY (straight into the table; when a key is taken, into a temporary table and moved over with one
    INSERT … SELECT … ON CONFLICT DO NOTHING): several times faster than multi-row INSERTs for bulk loads.
    Side effect there: the JSON columns of the given dicts are rewritten in place to their JSON text.
    Runs in the caller's transaction; database errors other than a taken key propagate.
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        await session.execute(insert_ignoring_duplicates(session, model), rows)
        return
    table = model.__table__
    columns = [c.name for c in table.columns]
    temp = f"_load_{table.name}"
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    for col in (c.name for c in table.columns if isinstance(c.type, JSON)):
        for row in rows:
            value = row[col]
            row[col] = json.dumps(value, ensure_ascii=False) if value else "{}"
    records = list(map(itemgetter(*columns), rows))
    # Usually every row is new: COPY straight into the table. If a key is taken after all (a concurrent
    # writer, an event id stored under another record), undo that and take the path that skips duplicates.
    try:
        async with raw.transaction():  # a savepoint inside the session's transaction
            await raw.copy_records_to_table(table.name, records=records, columns=columns)
        return
    except asyncpg.UniqueViolationError:
        pass
    await raw.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {temp} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await raw.copy_records_to_table(temp, records=records, columns=columns)
    names = ", ".join(columns)
    await raw.execute(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {temp} ON CONFLICT DO NOTHING; TRUNCATE {temp}"
    )


async def copy_text_ignoring_duplicates(
    session: AsyncSession, table: str, columns: Sequence[str], data: Sequence[bytes | memoryview]
) -> bool:
    """PostgreSQL: rows in COPY text format (`data`, concatenated) into `table`, skipping rows whose key is
    already stored. True when every row went in by the plain COPY; False when some key was taken and the
    rows went through a temporary table and INSERT … ON CONFLICT DO NOTHING instead."""
    if not any(data):
        return True
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    try:
        async with raw.transaction():  # a savepoint inside the session's transaction
            await raw.copy_to_table(table, source=_chunks(data), columns=list(columns), format="text")
        return True
    except asyncpg.UniqueViolationError:
        pass
    temp = f"_load_{table}"
    await raw.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {temp} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await raw.copy_to_table(temp, source=_chunks(data), columns=list(columns), format="text")
    names = ", ".join(columns)
    await raw.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {temp} ON CONFLICT DO NOTHING; TRUNCATE {temp}"
    )
    return False


async def _chunks(data: Sequence[bytes | memoryview]) -> AsyncIterator[bytes | memoryview]:
    for part in data:
        if part:
            yield part


def dialect_insert(dialect: str, table: Any) -> Any:
    """INSERT into `table` (a Table) in the dialect ("postgresql", else SQLite) that has ON CONFLICT clauses:
    the one place that picks between them."""
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def insert_ignoring_duplicates(session: AsyncSession, model: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the session's dialect."""
    # Core, not ORM: bulk loads skip ORM bookkeeping.
    return dialect_insert(session.get_bind().dialect.name, model.__table__).on_conflict_do_nothing()
