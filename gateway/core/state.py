"""Named values that survive restarts (the sync cursor), read and written inside the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.core.models import SyncState


async def get_state(session: AsyncSession, name: str) -> str | None:
    """The stored value named `name`, or None; read in the caller's transaction."""
    return (await session.execute(select(SyncState.value).where(SyncState.name == name))).scalar_one_or_none()


async def set_state(session: AsyncSession, name: str, value: str) -> None:
    """Store `value` under `name` (insert or replace, `updated_at` now), flushed in the caller's transaction."""
    row = await session.get(SyncState, name)
    now = datetime.now(UTC)
    if row is None:
        session.add(SyncState(name=name, value=value, updated_at=now))
    else:
        row.value, row.updated_at = value, now
    await session.flush()
