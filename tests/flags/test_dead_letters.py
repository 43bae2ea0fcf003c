"""Dead letters (interfaces.md 1.1), through `gateway dispatch` as a real process against the credit simulator:
what the credit system refuses for good (400/404/409/422) is FAILED, listed by `--failed`, counted by the
`gateway_outbox_failed` gauge, makes `--reconcile` inconsistent, and is re-driven by `--requeue` with the
same body and Idempotency-Key. What is not a refusal (408, 429, 5xx, a broken 2xx, a hostile header) is
never a dead letter, and no answer leaves an item leased with nothing recorded. Upstream bodies never show
in what the command prints as its result or reason."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from gateway.core.settings import Settings
from gateway.flags.models import CREDIT, EMERGENCY
from tests.conftest import Database
from tests.flags.support import TOKEN, Sim, all_outbox, rec, store

GATEWAY = str(Path(sys.executable).with_name("gateway"))
FLAG_ROUTE = "POST /api/v1/complaint-flags"
SECRET = "ERROR 1045 (28000): Access denied for user 'credit'@'10.2.3.4' password hunter2 at db-3.credit.internal"
REFUSALS = (400, 404, 409, 422)


def critical(n: int) -> list[dict[str, Any]]:
    return [rec(f"DL{i:03d}", "2024-03-16T10:00:00+08:00", urgency="CRITICAL", category="FOOD", kind="INQUIRY")
            for i in range(n)]


def canned(status: int, body: str = SECRET, headers: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    return {"status": status, "headers": headers or [], "body_b64": base64.b64encode(body.encode()).decode()}


def dispatch(db: Database, credit: Sim, emergency: Sim, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = db.env(GATEWAY_CREDIT_URL=credit.url, GATEWAY_CREDIT_TOKEN=TOKEN,
                         GATEWAY_EMERGENCY_URL=emergency.url, GATEWAY_EMERGENCY_TOKEN=TOKEN,
                         GATEWAY_CONNECTOR_ATTEMPTS="2", GATEWAY_CONNECTOR_BUDGET_S="3", **env)
    return subprocess.run([GATEWAY, "dispatch", *args], env=environment, capture_output=True, text=True,
                          timeout=120)


def reason(done: subprocess.CompletedProcess[str]) -> str:
    """The command's one-line reason: the last line of standard error (logs come before it)."""
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("gateway dispatch: "), done.stderr
    return lines[-1]


async def failed_gauge(db: Database, system: str) -> float:
    """`gateway_outbox_failed` as a Prometheus scrape of the API sees it."""
    app = create_app(Settings(database_url=db.url, jwt_secret="x" * 32, dispatcher=False, auto_migrate=False))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as client:
        text = (await client.get("/metrics")).text
    found = re.search(rf'^gateway_outbox_failed\{{system="{system}"\}} (\S+)$', text, re.M)
    assert found, "gateway_outbox_failed is not exposed"
    return float(found.group(1))


async def test_refused_flags_are_dead_letters_listed_reconciled_and_requeued(
    world: Database, credit_sim: Sim, emergency_sim: Sim
) -> None:
    await store(world, critical(4))
    # Each flag is refused once, each with another of the refusals, each with internals in the body.
    credit_sim.faults(script=["canned"] * 4, canned=[canned(s) for s in REFUSALS])

    first = dispatch(world, credit_sim, emergency_sim, "--once")
    assert first.returncode == 1
    summary = json.loads(first.stdout)
    assert summary["outcomes"] == {CREDIT: {"error": 4}, EMERGENCY: {"delivered": 4}}
    assert summary["pending"] == {CREDIT: 0, EMERGENCY: 0}
    assert summary["failed"] == {CREDIT: 4, EMERGENCY: 0}
    assert "4 deliveries refused for good" in reason(first) and "--requeue" in reason(first)
    assert credit_sim.stats()["requests"] == {FLAG_ROUTE: 4}  # a refusal is not retried
    items = {o.key: o for o in await all_outbox(world, CREDIT)}
    assert all(o.state == "FAILED" and o.lease_until is None and o.failed_at for o in items.values())
    frozen = {key: o.payload for key, o in items.items()}

    listed = dispatch(world, credit_sim, emergency_sim, "--failed")
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(letter["id"] for letter in letters) == sorted(items)
    statuses = set()
    for letter in letters:
        assert set(letter) == {"id", "system", "kind", "attempts", "last_error", "failed_at"}
        assert (letter["system"], letter["kind"], letter["attempts"]) == (CREDIT, "flag", 1)
        assert datetime.fromisoformat(letter["failed_at"]).utcoffset().total_seconds() == 8 * 3600
        statuses |= {int(s) for s in re.findall(r"HTTP (\d{3})", letter["last_error"])}
        assert "request id" in letter["last_error"]
    assert statuses == set(REFUSALS)
    # The credit system's internals stay inside: not in the result, not in the reason, not in lastError.
    for text in (first.stdout, reason(first), listed.stdout):
        assert "hunter2" not in text and "db-3" not in text
    # ... but in the log, with the request id that the error names.
    rid = re.search(r"request id (\w+)", letters[0]["last_error"]).group(1)  # type: ignore[union-attr]
    logs = [json.loads(line) for line in first.stderr.splitlines() if line.startswith("{")]
    assert any(e.get("request_id") == rid and "hunter2" in e["msg"] for e in logs)

    reconciled = dispatch(world, credit_sim, emergency_sim, "--reconcile")
    assert reconciled.returncode == 1
    report = json.loads(reconciled.stdout)
    assert report["consistent"] is False and sorted(report["failed"]) == sorted(items)
    assert await failed_gauge(world, CREDIT) == 4

    # The credit system takes them now. Requeue one by id (an unknown id beside it is named), then the rest.
    one = sorted(items)[0]
    requeued = dispatch(world, credit_sim, emergency_sim, "--requeue", one, "NO-SUCH-ITEM")
    assert (requeued.returncode, requeued.stdout.strip()) == (1, "1") and "NO-SUCH-ITEM" in reason(requeued)
    assert one not in reason(requeued)
    rest = dispatch(world, credit_sim, emergency_sim, "--requeue-all")
    assert (rest.returncode, rest.stdout.strip()) == (0, "3"), rest.stderr
    assert await failed_gauge(world, CREDIT) == 0

    second = dispatch(world, credit_sim, emergency_sim, "--once")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["outcomes"] == {CREDIT: {"delivered": 4}}
    # The same body under the same key: the flag the credit system holds is the payload frozen at first.
    held = {f["flag_id"]: f for f in credit_sim.get("/_sim/flags")}
    assert sorted(held) == sorted(items) and all(f["times_received"] == 1 for f in held.values())
    for key, payload in frozen.items():
        assert {k: held[key][k] for k in payload} == payload
    keys = [r["idempotency_key"] for r in credit_sim.requests() if r["route"] == FLAG_ROUTE]
    assert sorted(keys) == sorted([*items, *items])  # refused once, delivered once: one key per flag

    final = dispatch(world, credit_sim, emergency_sim, "--reconcile")
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["consistent"] is True


# answer -> what it is for the outbox: never a dead letter
NOT_REFUSALS = {
    "408": canned(408),
    "429 with a Retry-After no datetime holds": canned(429, headers=[("Retry-After",
                                                                     "Mon, 01 Jan 99999999999 00:00:00 GMT")]),
    "507": canned(507),
    "201 with a broken receipt": canned(201, json.dumps({"flag_id": None, "note": SECRET})),
}


@pytest.mark.parametrize("answer", NOT_REFUSALS.values(), ids=NOT_REFUSALS.keys())
async def test_what_is_not_a_refusal_stays_pending_with_its_error_recorded(
    world: Database, credit_sim: Sim, emergency_sim: Sim, answer: dict[str, Any]
) -> None:
    await store(world, critical(2))
    credit_sim.faults(outage="canned", canned=[answer])
    done = dispatch(world, credit_sim, emergency_sim, "--once")
    assert done.returncode == 1  # a one-line reason, not a crash
    assert "2 items still pending" in reason(done) and "Traceback" not in done.stderr
    assert json.loads(done.stdout)["failed"] == {CREDIT: 0, EMERGENCY: 0}
    items = await all_outbox(world, CREDIT)
    assert len(items) == 2
    for item in items:
        assert item.state == "PENDING" and item.lease_until is None and item.lease_owner is None
        assert item.last_error and "HTTP" in item.last_error and "hunter2" not in item.last_error
    assert 2 <= credit_sim.stats()["requests"][FLAG_ROUTE] <= 4  # each retried within its call
