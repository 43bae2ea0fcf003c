"""The resilient base, through real HTTP against the simulators: retries, Retry-After, budgets, circuit
breaker, idempotency keys, timeouts, typed errors and metrics."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY, generate_latest

from connectors import (
    CircuitState,
    ConnectorConfig,
    CreditConnector,
    UpstreamError,
    UpstreamNotConfigured,
    UpstreamUnavailable,
    request_id_var,
)
from connectors.models import CaseLeadRequest, IncidentRequest
from tests.connectors.conftest import Make, Sim

USCC = "91110000600037341L"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def incident() -> IncidentRequest:
    return IncidentRequest(
        complaint_ids=["C00000001"], category="FOOD", urgency="CRITICAL", unit_code="510802",
        summary="食物中毒", reported_at=datetime(2024, 5, 1, 10, tzinfo=UTC),
    )


async def test_retries_503_then_succeeds(make: Make, sims: dict[str, Sim]) -> None:
    sims["credit"].faults(script=["503", "502", "500"])
    before = metric("gateway_upstream_retries_total", system="credit")
    found = await make("credit").enterprises([USCC])
    assert [e.uscc for e in found] == [USCC]
    assert sims["credit"].stats()["total_requests"] == 4
    assert metric("gateway_upstream_retries_total", system="credit") - before == 3


@pytest.mark.parametrize("fault", ["reset", "close", "truncate", "504"])
async def test_transient_faults_are_retried(make: Make, sims: dict[str, Sim], fault: str) -> None:
    sims["credit"].faults(script=[fault])
    assert len(await make("credit").enterprises([USCC])) == 1
    assert sims["credit"].stats()["total_requests"] == 2


async def test_gives_up_after_bounded_attempts(make: Make, sims: dict[str, Sim]) -> None:
    sims["credit"].faults(outage="503")
    with pytest.raises(UpstreamUnavailable) as info:
        await make("credit", attempts=3).enterprises([USCC])
    assert info.value.code == "UPSTREAM_UNAVAILABLE" and info.value.system == "credit"
    assert "3 attempts" in str(info.value)
    assert sims["credit"].stats()["total_requests"] == 3


async def test_retry_after_is_honoured(make: Make, sims: dict[str, Sim]) -> None:
    sims["credit"].faults(script=["429"], retry_after=0.4)
    started = time.monotonic()
    assert len(await make("credit").enterprises([USCC])) == 1
    assert time.monotonic() - started >= 0.4
    assert sims["credit"].stats()["total_requests"] == 2


async def test_retry_after_beyond_the_budget_gives_up_at_once(make: Make, sims: dict[str, Sim]) -> None:
    sims["credit"].faults(script=["503"], retry_after=30)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="Retry-After"):
        await make("credit", budget_s=1.0).enterprises([USCC])
    assert time.monotonic() - started < 1.0  # it did not wait the 30 s, nor even the budget
    assert sims["credit"].stats()["total_requests"] == 1


async def test_total_budget_bounds_the_call(make: Make, sims: dict[str, Sim]) -> None:
    sims["credit"].faults(outage="hang", hang_s=5)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable):
        await make("credit", timeout_s=0.3, budget_s=0.8, attempts=10).enterprises([USCC])
    assert time.monotonic() - started < 1.2
    assert 1 <= sims["credit"].stats()["total_requests"] <= 3  # 0.3 + 0.3 + the 0.2 left: never 10


async def test_timeout_is_retried(make: Make, sims: dict[str, Sim]) -> None:
    sims["credit"].faults(script=["hang"], hang_s=3)
    started = time.monotonic()
    assert len(await make("credit", timeout_s=0.5).enterprises([USCC])) == 1
    assert 0.5 <= time.monotonic() - started < 2.5
    assert sims["credit"].stats()["total_requests"] == 2


@pytest.mark.parametrize("status", ["400", "404", "409", "422"])
async def test_client_errors_are_not_retried(make: Make, sims: dict[str, Sim], status: str) -> None:
    sims["enforcement"].faults(script=[status])
    with pytest.raises(UpstreamError) as info:
        await make("enforcement").cases_by_ids(["X-1"])
    assert info.value.status == int(status) and info.value.code == "UPSTREAM_ERROR"
    assert not info.value.config_fault
    assert sims["enforcement"].stats()["total_requests"] == 1


async def test_unprocessable_write_is_not_retried_and_has_no_effect(make: Make, sims: dict[str, Sim]) -> None:
    lead = CaseLeadRequest(complaint_id="C1", respondent_uscc=None, unit_code="not-a-unit", summary="s",
                           suggested_at=datetime(2024, 5, 1, tzinfo=UTC))
    with pytest.raises(UpstreamError) as info:
        await make("enforcement").create_case_lead(lead)
    assert info.value.status == 422
    stats = sims["enforcement"].stats()
    assert stats["total_requests"] == 1 and stats["effects"] == {}


@pytest.mark.parametrize("status", ["401", "403"])
async def test_auth_failures_are_configuration_faults(make: Make, sims: dict[str, Sim], status: str) -> None:
    sims["credit"].faults(script=[status])
    with pytest.raises(UpstreamError) as info:
        await make("credit").enterprises([USCC])
    assert info.value.config_fault and info.value.status == int(status)
    assert sims["credit"].stats()["total_requests"] == 1


async def test_wrong_token_is_refused(make: Make, sims: dict[str, Sim]) -> None:
    with pytest.raises(UpstreamError) as info:
        await make("credit", token="wrong").enterprises([USCC])
    assert info.value.status == 401 and info.value.config_fault


@pytest.mark.parametrize("fault", ["malformed", "badshape"])
async def test_broken_2xx_body_is_retried_like_a_5xx(make: Make, sims: dict[str, Sim], fault: str) -> None:
    sims["credit"].faults(script=[fault])
    assert len(await make("credit").enterprises([USCC])) == 1
    assert sims["credit"].stats()["total_requests"] == 2


@pytest.mark.parametrize("fault", ["malformed", "badshape"])
async def test_a_2xx_body_broken_every_time_ends_as_an_upstream_error(
    make: Make, sims: dict[str, Sim], fault: str
) -> None:
    sims["credit"].faults(outage=fault)
    with pytest.raises(UpstreamError, match="body") as info:
        await make("credit", attempts=3).enterprises([USCC])
    assert info.value.status == 200 and "3 attempts" in str(info.value) and not info.value.refused
    assert sims["credit"].stats()["total_requests"] == 3


async def test_write_keeps_its_idempotency_key_and_acts_once(make: Make, sims: dict[str, Sim]) -> None:
    # The first attempt is processed but its answer lost; so is the second; the third hits a plain 503.
    sims["emergency"].faults(script=["503-after", "reset-after", "503"])
    result = await make("emergency").create_incident(incident())
    seen = sims["emergency"].requests()
    keys = {r["idempotency_key"] for r in seen}
    assert len(seen) == 4 and len(keys) == 1 and None not in keys
    stats = sims["emergency"].stats()
    assert stats["effects"] == {"POST /api/v1/incidents": 1}
    assert stats["replays"] == {"POST /api/v1/incidents": 2}
    stored = sims["emergency"].http.get("/_sim/incidents").json()
    assert [i["incident_id"] for i in stored if i["incident_id"] == result.incident_id] == [result.incident_id]


async def test_caller_supplied_key_makes_a_second_call_a_replay(make: Make, sims: dict[str, Sim]) -> None:
    emergency = make("emergency")
    first = await emergency.create_incident(incident(), idempotency_key="outbox-42")
    again = await emergency.create_incident(incident(), idempotency_key="outbox-42")
    assert first == again
    assert sims["emergency"].stats()["effects"] == {"POST /api/v1/incidents": 1}


async def test_headers_carry_token_and_request_id(make: Make, sims: dict[str, Sim]) -> None:
    credit = make("credit")
    token = request_id_var.set("req-abc")
    try:
        await credit.enterprises([USCC])
    finally:
        request_id_var.reset(token)
    await credit.enterprises([USCC])
    first, second = sims["credit"].requests()
    assert first["authorization"] == "Bearer test-token"
    assert first["request_id"] == "req-abc"
    assert second["request_id"] and second["request_id"] != "req-abc"


async def test_circuit_opens_refuses_fast_half_opens_and_closes(make: Make, sims: dict[str, Sim]) -> None:
    credit: CreditConnector = make("credit", attempts=1, circuit_min_calls=4, circuit_failure_rate=0.5,
                                   circuit_open_s=0.5)
    sims["credit"].faults(outage="503")
    for _ in range(4):
        with pytest.raises(UpstreamUnavailable):
            await credit.enterprises([USCC])
    assert credit.circuit_state is CircuitState.OPEN
    assert metric("gateway_upstream_circuit_state", system="credit") == 2
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="circuit open"):
        await credit.enterprises([USCC])
    assert time.monotonic() - started < 0.05
    assert sims["credit"].stats()["total_requests"] == 4  # the refused call never left

    await asyncio.sleep(0.55)
    assert credit.circuit_state is CircuitState.HALF_OPEN
    with pytest.raises(UpstreamUnavailable):  # a failed trial opens it again
        await credit.enterprises([USCC])
    assert credit.circuit_state is CircuitState.OPEN

    await asyncio.sleep(0.55)
    sims["credit"].faults()
    assert len(await credit.enterprises([USCC])) == 1  # a good trial closes it
    assert credit.circuit_state is CircuitState.CLOSED
    assert metric("gateway_upstream_circuit_state", system="credit") == 0


async def test_half_open_lets_one_trial_through(make: Make, sims: dict[str, Sim]) -> None:
    credit = make("credit", attempts=1, circuit_min_calls=2, circuit_open_s=0.2)
    sims["credit"].faults(outage="503")
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await credit.enterprises([USCC])
    await asyncio.sleep(0.25)
    sims["credit"].faults(latency_ms=100)
    results = await asyncio.gather(*(credit.enterprises([USCC]) for _ in range(5)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, UpstreamUnavailable) for r in results if isinstance(r, BaseException))
    assert credit.circuit_state is CircuitState.CLOSED


async def test_client_errors_do_not_open_the_circuit(make: Make, sims: dict[str, Sim]) -> None:
    enforcement = make("enforcement", circuit_min_calls=3)
    sims["enforcement"].faults(outage="404")
    for _ in range(5):
        with pytest.raises(UpstreamError):
            await enforcement.cases_by_ids(["X"])
    assert enforcement.circuit_state is CircuitState.CLOSED


async def test_retry_budget_refuses_retries(make: Make, sims: dict[str, Sim]) -> None:
    credit = make("credit", retry_budget=0.0, min_retries_per_s=3)
    sims["credit"].faults(outage="503")
    before = metric("gateway_upstream_retry_budget_refusals_total", system="credit")
    with pytest.raises(UpstreamUnavailable, match="4 attempts"):
        await credit.enterprises([USCC])  # 3 retries: the floor of 3 a second
    with pytest.raises(UpstreamUnavailable, match="retry budget"):
        await credit.enterprises([USCC])
    assert sims["credit"].stats()["total_requests"] == 5
    assert metric("gateway_upstream_retry_budget_refusals_total", system="credit") - before == 1


async def test_retry_budget_is_a_share_of_calls(make: Make, sims: dict[str, Sim]) -> None:
    credit = make("credit", retry_budget=0.5, min_retries_per_s=0, attempts=2)
    for _ in range(2):
        await credit.enterprises([USCC])
    sims["credit"].faults(outage="503")
    refused = []
    for _ in range(4):
        with pytest.raises(UpstreamUnavailable) as info:
            await credit.enterprises([USCC])
        refused.append("retry budget" in str(info.value))
    # Retries may reach half the calls: the 3rd and 4th calls may retry (1 <= 1.5, 2 <= 2), the 5th may not
    # (3 > 2.5), the 6th may again (3 <= 3).
    assert refused == [False, False, True, False]
    assert sims["credit"].stats()["total_requests"] == 2 + 2 + 2 + 1 + 2


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        credit = CreditConnector(ConnectorConfig(url=f"http://127.0.0.1:{port}", attempts=2, backoff_base_s=0.01))
        with pytest.raises(UpstreamUnavailable, match="ConnectError"):
            await credit.enterprises([USCC])
        await credit.aclose()


async def test_not_configured() -> None:
    credit = CreditConnector(ConnectorConfig(url=None))
    with pytest.raises(UpstreamNotConfigured) as info:
        await credit.enterprises([USCC])
    assert info.value.code == "UPSTREAM_NOT_CONFIGURED" and info.value.system == "credit"


async def test_metrics_are_exposed(make: Make) -> None:
    await make("credit").enterprises([USCC])
    text = generate_latest().decode()
    for name in (
        'gateway_upstream_requests_total{operation="enterprises",outcome="ok",system="credit"}',
        "gateway_upstream_request_duration_seconds_bucket",
        "gateway_upstream_circuit_state",
    ):
        assert name in text
