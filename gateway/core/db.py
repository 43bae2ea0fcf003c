"""Engines and sessions: one async engine per database URL, SQLite tuned for a single writer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, FromClause, Table, event, func, make_url, select, true
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")


class UTCDateTime(TypeDecorator[datetime]):
    """An instant. Stored as UTC (timestamptz on PostgreSQL, naive UTC text on SQLite), read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for an instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Values per `IN (...)` list: under SQLite's bound-parameter limit (999 in old builds) with room to spare.
MAX_IN_LIST = 900


def chunked(items: Sequence[T], size: int = MAX_IN_LIST) -> list[Sequence[T]]:
    """`items` in consecutive slices of at most `size`, for `IN (...)` lists."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def each_by_key(table: Table, column: str, keys: BindParameter[Any], name: str) -> tuple[Any, FromClause]:
    """(columns, FROM clause) of the rows of `table` whose `column` is one of `keys` (a PostgreSQL array
    parameter), looked up key by key on the column's index.

    Why not `column = ANY(keys)`: the planner then weighs index lookups against a scan of the whole table by
    its estimates (random page costs, statistics that a bulk load outruns or autovacuum never gathers), and a
    batch of a few thousand keys tips it to the scan; a load storing such batches then reads the whole table
    in every transaction. A LATERAL subquery per key (OFFSET 0 keeps it from being flattened into a join the
    planner could hash again) is an index lookup whatever the estimates."""
    wanted = select(func.unnest(keys).label("key")).subquery(f"{name}_keys")
    rows = select(table).where(table.c[column] == wanted.c.key).offset(0).lateral(name)
    return rows.c, wanted.join(rows, true())


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for `url`. A PostgreSQL URL may carry `?search_path=SCHEMA` to keep the gateway's
    tables in a schema of their own (one database shared by several deployments, or by tests)."""
    connect_args: dict[str, Any] = kwargs.pop("connect_args", {})
    parsed = make_url(url)
    if is_sqlite(url):
        connect_args.setdefault("timeout", 30)
    else:
        server_settings = connect_args.setdefault("server_settings", {})
        # asyncpg prepares every statement; after five runs PostgreSQL may switch it to a generic plan that
        # cannot see the parameters, and for a range over a big table ("this USCC in this month") that
        # plan is a sequential scan. Planning each execution costs far less than that.
        server_settings.setdefault("plan_cache_mode", "force_custom_plan")
        # JIT compiles a statement's expressions when its estimated cost is high, which an estimate without
        # statistics often is: 150-200 ms spent compiling a rollup upsert that then runs in 10 ms. The
        # gateway's statements are short; none of them gains from it.
        server_settings.setdefault("jit", "off")
        if "search_path" in parsed.query:
            server_settings["search_path"] = str(parsed.query["search_path"])
            parsed = parsed.difference_update_query(["search_path"])
    engine = create_async_engine(parsed, connect_args=connect_args, **kwargs)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


_ON_COMMIT = "gateway.core.db.on_commit"


def on_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction commits; drop it if the transaction rolls back. For
    counting what was stored (a rolled-back batch stored nothing), not for work that must not be lost."""
    info = session.sync_session.info
    actions: list[Callable[[], None]] | None = info.get(_ON_COMMIT)
    if actions is None:
        actions = info[_ON_COMMIT] = []
        event.listen(session.sync_session, "after_commit", _run_actions)
        event.listen(session.sync_session, "after_rollback", _drop_actions)
    actions.append(action)


def _run_actions(sync_session: Any) -> None:
    actions: list[Callable[[], None]] = sync_session.info[_ON_COMMIT]
    for action in actions:
        action()
    actions.clear()


def _drop_actions(sync_session: Any) -> None:
    sync_session.info[_ON_COMMIT].clear()


@asynccontextmanager
async def transaction(sm: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on error."""
    async with sm() as session, session.begin():
        yield session
