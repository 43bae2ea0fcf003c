"""Personal data (个人信息保护): masked without the `pii` role; with it, every clear read is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.complaints.models import Complaint, PiiRead
from gateway.core.db import transaction


def mask_name(name: str | None) -> str | None:
    """First character, then `*` for each other character: 张三丰 -> 张**."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)


def mask_phone(phone: str | None) -> str | None:
    """First 3 and last 4 characters, `*` between: 13812345678 -> 138****5678.

    A number too short to keep 7 characters and still hide something is hidden whole."""
    if not phone:
        return phone
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


async def write_reads(
    sm: async_sessionmaker[AsyncSession], actor: str, unit: str, request_id: str, reads: dict[str, set[str]]
) -> None:
    """One audit row per record read in clear, committed before the answer leaves the gateway."""
    if not reads:
        return
    now = datetime.now(UTC)
    async with transaction(sm) as session:
        session.add_all(
            PiiRead(
                at=now, actor=actor, actor_unit=unit, complaint_id=cid, fields=",".join(sorted(fields)),
                request_id=request_id,
            )
            for cid, fields in sorted(reads.items())
        )


async def list_reads(
    session: AsyncSession,
    scope_filter: Any,
    *,
    complaint_id: str | None,
    actor: str | None,
    first: int,
    before_id: int | None,
) -> list[PiiRead]:
    """Newest first; only reads of records the caller can see (the join applies its jurisdiction)."""
    query = (
        select(PiiRead)
        .join(Complaint, Complaint.id == PiiRead.complaint_id)
        .where(scope_filter)
        .order_by(PiiRead.id.desc())
        .limit(first + 1)
    )
    if complaint_id is not None:
        query = query.where(PiiRead.complaint_id == complaint_id)
    if actor is not None:
        query = query.where(PiiRead.actor == actor)
    if before_id is not None:
        query = query.where(PiiRead.id < before_id)
    return list((await session.execute(query)).scalars())


