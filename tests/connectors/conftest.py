"""The four simulators as real uvicorn servers on loopback, shared by the session; each test starts from
zeroed counters and no faults. Connectors get small timeouts so that fault tests stay fast."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from connectors import CONNECTORS, BaseConnector, ConnectorConfig
from connectors.simulators import FACTORIES, generate_records, run_in_thread
from connectors.simulators.control import SimControl

TOKEN = "test-token"
RECORDS = generate_records(250, seed=7)

FAST = ConnectorConfig(
    token=TOKEN,
    timeout_s=2.0,  # generous: a loaded CI machine must not turn into spurious timeouts; tests of timeouts
    attempts=4,  # set their own
    budget_s=5.0,
    retry_budget=10.0,  # out of the way unless a test is about it
    circuit_min_calls=1000,  # likewise
    backoff_base_s=0.01,
    backoff_max_s=0.05,
)


Sim = SimControl  # a running simulator, controlled over HTTP through its /_sim routes


@pytest.fixture(scope="session")
def sims() -> Iterator[dict[str, Sim]]:
    with ExitStack() as stack:
        out = {}
        for system, factory in FACTORIES.items():
            args: list[Any] = [RECORDS] if system == "complaints" else []
            url = stack.enter_context(run_in_thread(factory(*args, token=TOKEN, seed=1)))
            out[system] = Sim(system, url)
        yield out


@pytest.fixture(autouse=True)
def _clean_sims(sims: dict[str, Sim]) -> None:
    for sim in sims.values():
        sim.reset()


Make = Callable[..., Any]


@pytest.fixture
async def make(sims: dict[str, Sim]) -> AsyncIterator[Make]:
    """make(system, **config overrides) -> a connector of that system pointed at its simulator."""
    made: list[BaseConnector] = []

    def factory(system: str, **overrides: Any) -> Any:
        config = dataclasses.replace(FAST, url=sims[system].url, **overrides)
        connector = CONNECTORS[system](config)
        made.append(connector)
        return connector

    yield factory
    for c in made:
        await c.aclose()
