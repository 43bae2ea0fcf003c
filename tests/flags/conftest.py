"""Fixtures of the flag tests: a unit tree in the database, the credit and emergency simulators as real
HTTP servers on loopback (fresh per test), and connectors to them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest

from connectors import CreditConnector, EmergencyConnector
from tests.conftest import Database
from tests.factories import load_units
from tests.flags.support import FAST, Sim


@pytest.fixture
async def world(db: Database) -> AsyncIterator[Database]:
    await load_units(db.sessionmaker)
    yield db


# ---------------------------------------------------------------------------------------------- simulators


@pytest.fixture
def credit_sim() -> Iterator[Sim]:
    sim = Sim("credit")
    yield sim
    sim.close()


@pytest.fixture
def emergency_sim() -> Iterator[Sim]:
    sim = Sim("emergency")
    yield sim
    sim.close()


@pytest.fixture
async def credit(credit_sim: Sim) -> AsyncIterator[CreditConnector]:
    async with CreditConnector(dataclasses.replace(FAST, url=credit_sim.url)) as conn:
        yield conn


@pytest.fixture
async def emergency(emergency_sim: Sim) -> AsyncIterator[EmergencyConnector]:
    async with EmergencyConnector(dataclasses.replace(FAST, url=emergency_sim.url)) as conn:
        yield conn
