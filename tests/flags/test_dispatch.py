"""Delivering the outbox through real connectors to the simulators on loopback: the credit system down then
up, refusals, metrics, reconciliation, and the background dispatcher of `gateway serve`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from sqlalchemy import select, update

from connectors import CreditConnector, EmergencyConnector
from connectors.models import ComplaintFlag
from gateway.api.app import create_app
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.flags.dispatch import credit_sender, emergency_sender, reconcile
from gateway.flags.models import CREDIT, EMERGENCY, IncidentLink, OutboxItem
from gateway.flags.outbox import DispatchConfig, Dispatcher
from gateway.flags.rules import CRITICAL_SAFETY, flag_id
from tests.conftest import Database
from tests.flags.support import TOKEN, USCC, Sim, all_outbox, rec, store

CFG = DispatchConfig(batch=3, concurrency=2, lease_s=30, interval_s=0.05, backoff_base_s=1.0, backoff_max_s=5.0)
LATER = timedelta(minutes=10)


def critical(n: int, prefix: str = "CR") -> list[dict[str, object]]:
    # INQUIRY, so that no surge joins in: n CRITICAL_SAFETY flags and n incidents.
    return [rec(f"{prefix}{i}", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="FOOD", kind="INQUIRY")
            for i in range(n)]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_credit_down_then_up_delivers_every_flag_exactly_once(
    world: Database, credit_sim: Sim, emergency_sim: Sim, credit: CreditConnector, emergency: EmergencyConnector
) -> None:
    await store(world, critical(5))
    dispatcher = Dispatcher(world.sessionmaker, {CREDIT: credit_sender(credit), EMERGENCY: emergency_sender(emergency)},
                            CFG)
    credit_sim.faults(outage="503")
    unavailable_before = sample("gateway_outbox_deliveries_total", system=CREDIT, outcome="unavailable")

    started = datetime.now(UTC)
    report = await dispatcher.run_pass()
    assert report.outcomes == {CREDIT: {"unavailable": 5}, EMERGENCY: {"delivered": 5}}
    pending = await all_outbox(world, CREDIT)
    assert all(o.state == "PENDING" and o.attempts == 1 and o.last_error for o in pending)
    # Backed off: at least 0.1 s after the failure, so after the pass began (not "after now": on a loaded
    # machine the pass and this read can take longer than the shortest backoff).
    assert all(o.next_attempt_at > started for o in pending)
    assert sample("gateway_outbox_pending", system=CREDIT) == 5
    assert sample("gateway_outbox_pending", system=EMERGENCY) == 0
    assert sample("gateway_outbox_oldest_age_seconds", system=CREDIT) > 0
    assert sample("gateway_outbox_deliveries_total", system=CREDIT, outcome="unavailable") == unavailable_before + 5

    assert (await dispatcher.run_pass()).outcomes == {}  # nothing due yet: the backoff holds
    credit_sim.faults()  # the credit system is back
    report = await dispatcher.run_pass(due_by=datetime.now(UTC) + LATER)
    assert report.outcomes == {CREDIT: {"delivered": 5}}
    delivered = await all_outbox(world, CREDIT)
    assert all(o.state == "DELIVERED" and o.attempts == 2 and o.receipt and o.delivered_at for o in delivered)
    assert sample("gateway_outbox_pending", system=CREDIT) == 0

    ledger = credit_sim.get("/_sim/flags")
    assert sorted(f["flag_id"] for f in ledger) == sorted(flag_id(CRITICAL_SAFETY, USCC, f"CR{i}") for i in range(5))
    assert all(f["times_received"] == 1 for f in ledger)
    keys = {r["idempotency_key"] for r in credit_sim.requests() if r["route"].startswith("POST")}
    assert keys == {f["flag_id"] for f in ledger}  # the flag_id is the Idempotency-Key
    incidents = [r["idempotency_key"] for r in emergency_sim.requests() if r["route"].startswith("POST")]
    assert sorted(incidents) == [f"CR{i}" for i in range(5)]  # the record id is the incident's key
    receipts = {o.key: o.receipt["incident_id"] for o in await all_outbox(world, EMERGENCY) if o.receipt}
    assert sorted(receipts) == [f"CR{i}" for i in range(5)]
    # Each record knows its incident, for `Complaint.incidents`.
    async with world.sessionmaker() as session:
        rows = await session.execute(select(IncidentLink.complaint_id, IncidentLink.incident_id))
        links = {complaint_id: incident_id for complaint_id, incident_id in rows.all()}
    assert links == receipts


async def test_a_refused_flag_is_parked_and_the_others_go_on(
    world: Database, credit_sim: Sim, credit: CreditConnector
) -> None:
    await store(world, critical(3))
    credit_sim.faults(script=["422"])
    report = await Dispatcher(world.sessionmaker, {CREDIT: credit_sender(credit)}, CFG).run_pass()
    assert report.outcomes == {CREDIT: {"error": 1, "delivered": 2}}
    states = sorted(o.state for o in await all_outbox(world, CREDIT))
    assert states == ["DELIVERED", "DELIVERED", "FAILED"]


async def test_a_retry_after_a_lost_answer_is_a_replay_not_a_second_flag(
    world: Database, credit_sim: Sim, credit: CreditConnector
) -> None:
    """The credit system acts, then the answer is lost: the connector's and the outbox's retries reuse the key."""
    await store(world, critical(2))
    credit_sim.faults(script=["503-after", "reset-after", "503-after", "503-after"])
    dispatcher = Dispatcher(world.sessionmaker, {CREDIT: credit_sender(credit)}, CFG)
    for _ in range(4):
        await dispatcher.run_pass(due_by=datetime.now(UTC) + LATER)
    assert all(o.state == "DELIVERED" for o in await all_outbox(world, CREDIT))
    assert [f["times_received"] for f in credit_sim.get("/_sim/flags")] == [1, 1]
    assert credit_sim.stats()["effects"] == {"POST /api/v1/complaint-flags": 2}


async def test_reconciliation_finds_and_repairs_disagreements(
    world: Database, credit_sim: Sim, credit: CreditConnector
) -> None:
    await store(world, critical(4))
    await Dispatcher(world.sessionmaker, {CREDIT: credit_sender(credit)}, CFG).run_pass()
    report = await reconcile(world.sessionmaker, credit)
    assert report.consistent and (report.flags, report.delivered, report.received) == (4, 4, 4)

    lost_ack = flag_id(CRITICAL_SAFETY, USCC, "CR1")
    async with transaction(world.sessionmaker) as session:  # as if the ack had been lost in a crash
        await session.execute(update(OutboxItem).where(OutboxItem.key == lost_ack).values(state="PENDING"))
    stranger = ComplaintFlag.model_validate({
        "flag_id": "not-ours", "uscc": USCC, "reason": "COMPLAINT_SURGE", "severity": "LOW", "complaint_ids": [],
        "window_start": "2024-03-01T00:00:00+08:00", "window_end": "2024-04-01T00:00:00+08:00",
        "issued_by": "510000", "issued_at": "2024-03-02T00:00:00+08:00",
    })
    await credit.post_flag(stranger)
    report = await reconcile(world.sessionmaker, credit, repair=True)
    assert report.received_unmarked == [lost_ack] and report.unknown == ["not-ours"] and not report.consistent
    assert report.repaired == 1
    assert all(o.state == "DELIVERED" for o in await all_outbox(world, CREDIT))
    report = await reconcile(world.sessionmaker, credit, usccs=[USCC])
    assert report.received_unmarked == [] and report.unknown == ["not-ours"]


async def test_serve_runs_the_dispatcher_in_the_background_unless_switched_off(
    world: Database, credit_sim: Sim
) -> None:
    await store(world, critical(3))
    base = {"database_url": world.url, "jwt_secret": "s", "credit_url": credit_sim.url, "credit_token": TOKEN,
            "dispatch_interval_s": 0.05, "emergency_url": None}
    app = create_app(Settings(**base, dispatcher=False))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.5)
    assert all(o.state == "PENDING" for o in await all_outbox(world, CREDIT))

    app = create_app(Settings(**base, dispatcher=True))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if all(o.state == "DELIVERED" for o in await all_outbox(world, CREDIT)):
                break
            await asyncio.sleep(0.05)
    assert all(o.state == "DELIVERED" for o in await all_outbox(world, CREDIT))
    assert len(credit_sim.get("/_sim/flags")) == 3
