"""The live feed across replicas: two `gateway serve` processes on one PostgreSQL. A subscriber on one hears,
within 2 s, what an operator changes through the other; a county's subscriber never hears its sibling's."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from gateway.core.db import transaction
from gateway.ingest.store import ingest_raw
from tests.api.feed_support import SECRET, open_feed, receive, subscribe, synced, token
from tests.conftest import PG_URL, Database
from tests.factories import USCC, event, load_units, record

pytestmark = pytest.mark.skipif(not PG_URL, reason="replicas share PostgreSQL (GATEWAY_TEST_DATABASE_URL)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def replicas(db: Database, n: int = 2) -> Iterator[list[str]]:
    """`n` gateway processes serving the same database; yields their base URLs once all answer."""
    ports = [free_port() for _ in range(n)]
    env = db.env(GATEWAY_JWT_SECRET=SECRET, GATEWAY_DISPATCHER="off", GATEWAY_LOG_LEVEL="WARNING")
    procs = [subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(p)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        deadline = time.monotonic() + 60
        for proc, url in zip(procs, urls, strict=True):
            while True:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else "replica died"
                assert time.monotonic() < deadline, "replica did not start"
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def report(rid: str, unit: str) -> dict[str, Any]:
    return record(rid, kind="REPORT", handling_unit=unit, respondent={"uscc": USCC, "name": "某公司"},
                  events=[event(f"{rid}-d", "DISPATCHED", "2024-03-01T10:00:00+08:00", {"to": unit})])


async def file_case(base: str, rid: str, unit: str) -> float:
    """recordEvent CASE_FILED through one replica (a flag is raised in its transaction); returns when the
    request was sent, which is before the commit."""
    sent = time.monotonic()
    async with httpx.AsyncClient(base_url=base) as client:
        answer = await client.post("/graphql", json={"query": """mutation($id: ID!, $e: EventInput!) {
            recordEvent(complaintId: $id, event: $e) { id } }""", "variables": {"id": rid, "e": {
            "id": f"{rid}-case", "type": "CASE_FILED", "at": "2024-03-05T10:00:00+08:00",
            "data": {"case_no": f"CASE-{rid}"}}}}, headers={"Authorization": f"Bearer {token(unit, 'operator')}"})
    assert answer.json()["data"]["recordEvent"]["id"] == rid, answer.text
    return sent


async def test_an_alert_committed_on_one_replica_reaches_a_subscriber_on_the_other(db: Database) -> None:
    if db.backend != "postgresql":
        pytest.skip("replicas share PostgreSQL")
    await load_units(db.sessionmaker)
    async with transaction(db.sessionmaker) as session:
        assert not (await ingest_raw(session, [report("R-OWN", "510802001"), report("R-SIB", "510811001")])).rejected
    with replicas(db) as (a, b):
        ws_url = a.replace("http://", "ws://") + "/graphql"
        county = await open_feed(ws_url, token("510802"))
        await subscribe(county, "c", "510802", ["FLAG_RAISED"])
        sibling = await open_feed(ws_url, token("510811"))
        await subscribe(sibling, "s", "510811")
        assert await synced(county) == [] and await synced(sibling) == []

        sent = await file_case(b, "R-OWN", "510802")
        message = await receive(county, timeout=5)
        latency = time.monotonic() - sent
        alert = message["payload"]["data"]["alerts"]
        assert (alert["kind"], alert["complaintIds"], alert["detail"]["reason"]) == (
            "FLAG_RAISED", ["R-OWN"], "CASE_FILED_FROM_REPORT")
        assert latency < 2.0, f"delivered {latency:.2f} s after the request"

        # The sibling county heard nothing of it: its first alert is its own, raised afterwards.
        await file_case(b, "R-SIB", "510811")
        alert = (await receive(sibling, timeout=5))["payload"]["data"]["alerts"]
        assert alert["complaintIds"] == ["R-SIB"]
        with pytest.raises(asyncio.TimeoutError):
            await receive(county, timeout=0.5)

        # A supervision order issued through the other replica, on both counties' records.
        sent = time.monotonic()
        async with httpx.AsyncClient(base_url=b) as client:
            answer = await client.post("/graphql", json={"query": """mutation { issueSupervision(
                complaintIds: ["R-OWN", "R-SIB"], note: "请于3个工作日内反馈") { id } }"""},
                headers={"Authorization": f"Bearer {token('510800', 'supervisor')}"})
        assert answer.json()["data"]["issueSupervision"]["id"], answer.text
        alert = (await receive(sibling, timeout=5))["payload"]["data"]["alerts"]
        assert (alert["kind"], alert["complaintIds"]) == ("SUPERVISION_ISSUED", ["R-SIB"])
        assert time.monotonic() - sent < 2.0
        with pytest.raises(asyncio.TimeoutError):  # the county subscribed to flags only
            await receive(county, timeout=0.5)
        for ws in (county, sibling):
            await ws.close()
