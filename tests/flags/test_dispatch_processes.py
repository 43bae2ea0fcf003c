"""`gateway dispatch` as real processes: killed with SIGKILL between sending and marking delivered, then
restarted; and two dispatchers at once on the same database. The credit simulator's ledger decides."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from gateway.flags.models import CREDIT, EMERGENCY
from tests.conftest import Database
from tests.flags.support import TOKEN, Sim, all_outbox, rec, store

FLAG_ROUTE = "POST /api/v1/complaint-flags"
GATEWAY = str(Path(sys.executable).with_name("gateway"))  # the installed console script


def gateway(db: Database, sim: Sim, emergency: Sim, *args: str, **env: str) -> subprocess.Popen[str]:
    environment = db.env(GATEWAY_CREDIT_URL=sim.url, GATEWAY_CREDIT_TOKEN=TOKEN, GATEWAY_EMERGENCY_URL=emergency.url,
                         GATEWAY_EMERGENCY_TOKEN=TOKEN, **env)
    return subprocess.Popen(
        [GATEWAY, "dispatch", *args],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def critical(n: int) -> list[dict[str, Any]]:
    return [rec(f"K{i:03d}", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="DRUG", kind="INQUIRY")
            for i in range(n)]


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


async def test_dispatcher_killed_between_send_and_mark_resumes_without_duplicates(
    world: Database, credit_sim: Sim, emergency_sim: Sim
) -> None:
    n = 30
    await store(world, critical(n))
    # The credit system stores each flag, then its answer hangs: the dispatcher is stuck after sending.
    credit_sim.faults(outage="hang-after", hang_s=60)
    proc = gateway(world, credit_sim, emergency_sim, GATEWAY_CONNECTOR_TIMEOUT_S="50", GATEWAY_CONNECTOR_BUDGET_S="55",
                   GATEWAY_DISPATCH_LEASE_S="2", GATEWAY_DISPATCH_CONCURRENCY="64")
    try:
        wait_for(lambda: len(credit_sim.get("/_sim/flags")) == n)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    stuck = await all_outbox(world, CREDIT)
    assert [o.state for o in stuck] == ["PENDING"] * n  # received over there, not marked here
    assert all(o.first_attempt_at is not None and o.lease_until is not None for o in stuck)

    credit_sim.faults()
    time.sleep(2.2)  # the dead dispatcher's lease runs out
    restarted = gateway(world, credit_sim, emergency_sim, "--once")
    out, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err
    assert json.loads(out)["outcomes"][CREDIT] == {"delivered": n}
    assert all(o.state == "DELIVERED" for o in await all_outbox(world, CREDIT))
    ledger = credit_sim.get("/_sim/flags")
    assert len(ledger) == n and all(f["times_received"] == 1 for f in ledger)
    stats = credit_sim.stats()
    # Each flag acted on once. Replays: the restart re-sends all n; a dispatcher whose 2 s lease ran out while
    # its send hung may also have re-sent one (same key) before it was killed, which is what the key is for.
    assert stats["effects"] == {FLAG_ROUTE: n} and stats["replays"][FLAG_ROUTE] >= n


async def test_two_dispatchers_at_once_never_send_an_item_twice(
    world: Database, credit_sim: Sim, emergency_sim: Sim
) -> None:
    n = 120
    await store(world, critical(n))
    credit_sim.faults(latency_ms=150)
    # A generous attempt timeout: on a loaded machine a connector-level retry would blur what is tested here.
    env = {"GATEWAY_DISPATCH_BATCH": "10", "GATEWAY_DISPATCH_CONCURRENCY": "4", "GATEWAY_CONNECTOR_TIMEOUT_S": "20",
           "GATEWAY_CONNECTOR_BUDGET_S": "30"}
    procs = [gateway(world, credit_sim, emergency_sim, "--once", **env) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    delivered = [json.loads(out)["outcomes"].get(CREDIT, {}).get("delivered", 0) for out, _ in outputs]
    assert sum(delivered) == n and min(delivered) > 0, delivered  # both worked, on disjoint items
    items = await all_outbox(world)
    assert all(o.state == "DELIVERED" for o in items)
    assert {o.attempts for o in items} == {1}, "an item was claimed twice"
    ledger = credit_sim.get("/_sim/flags")
    assert len(ledger) == n and all(f["times_received"] == 1 for f in ledger)
    keys = Counter(r["idempotency_key"] for r in credit_sim.requests())
    assert len(keys) == n and credit_sim.stats()["requests"] == {FLAG_ROUTE: n}, keys.most_common(3)


async def test_dispatch_once_fails_with_a_reason_while_the_credit_system_is_down(
    world: Database, credit_sim: Sim, emergency_sim: Sim
) -> None:
    await store(world, critical(2))
    credit_sim.faults(outage="503")
    proc = gateway(world, credit_sim, emergency_sim, "--once", GATEWAY_CONNECTOR_ATTEMPTS="1")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert json.loads(out)["pending"] == {CREDIT: 2, EMERGENCY: 0}
    assert err.startswith("gateway dispatch: 2 items still pending") and "503" in err
