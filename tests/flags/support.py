"""Building blocks of the flag tests: records built for the rules, store helpers, a simulator handle."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import select

from connectors import ConnectorConfig
from connectors.simulators import FACTORIES, make_uscc
from connectors.simulators.control import SimControl
from connectors.simulators.server import ThreadedServer
from gateway.core.db import transaction
from gateway.flags.models import FlagRow, OutboxItem
from gateway.ingest.store import IngestResult, ingest_raw
from tests.conftest import Database
from tests.factories import USCC, event, record

TOKEN = "flags-test-token"
OTHER_USCC = make_uscc(random.Random(1), "510104")

FAST = ConnectorConfig(
    token=TOKEN, timeout_s=1.0, attempts=2, budget_s=2.0, retry_budget=10.0, circuit_min_calls=1000,
    backoff_base_s=0.01, backoff_max_s=0.05,
)


def rec(rid: str, at: str, *, kind: str = "COMPLAINT", uscc: str | None = USCC, unit: str = "510802001",
        urgency: str = "NORMAL", category: str = "PRODUCT_QUALITY", events: list[dict[str, Any]] | None = None,
        ) -> dict[str, Any]:
    """A record received at `at` (RFC 3339); events default to none, so that nothing else triggers."""
    respondent = {"uscc": uscc, "name": "某某有限公司"} if uscc else None
    return record(rid, kind=kind, received_at=at, respondent=respondent, handling_unit=unit, urgency=urgency,
                  category=category, events=events or [])


def case_filed(rid: str, at: str, n: int = 1) -> dict[str, Any]:
    return event(f"{rid}-cf{n}", "CASE_FILED", at, {"case_no": f"CASE-{rid}-{n}"}, "510802")


async def store(db: Database, raws: list[dict[str, Any]]) -> IngestResult:
    async with transaction(db.sessionmaker) as session:
        result = await ingest_raw(session, raws)
    assert not result.rejected, result.rejected
    return result


async def all_flags(db: Database) -> list[FlagRow]:
    async with db.sessionmaker() as session:
        return list((await session.execute(select(FlagRow).order_by(FlagRow.flag_id))).scalars())


async def all_outbox(db: Database, system: str | None = None) -> list[OutboxItem]:
    async with db.sessionmaker() as session:
        query = select(OutboxItem).order_by(OutboxItem.system, OutboxItem.key)
        if system:
            query = query.where(OutboxItem.system == system)
        return list((await session.execute(query)).scalars())



class Sim(SimControl):
    """A simulator served on loopback, controlled through its /_sim routes."""

    def __init__(self, system: str) -> None:
        self.layer = FACTORIES[system](token=TOKEN, seed=3)
        self.server = ThreadedServer(self.layer).start()
        super().__init__(system, self.server.url)

    def close(self) -> None:
        super().close()
        self.server.stop()


