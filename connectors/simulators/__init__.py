"""Simulators of the four external systems: FastAPI apps faithful to external-systems.md, with seedable
data, request counters and fault injection. Run them with `python -m connectors.simulators`."""

from __future__ import annotations

from typing import Any

from connectors.simulators import complaints, credit, emergency, enforcement
from connectors.simulators.base import Canned, Faults, SimLayer
from connectors.simulators.complaints import push, sign
from connectors.simulators.data import (
    SAMPLE_UNITS,
    cases_from_records,
    enterprise_for,
    generate_records,
    make_uscc,
    sample_handling_units,
    sample_units_csv,
)
from connectors.simulators.server import ThreadedServer, run_in_thread

FACTORIES: dict[str, Any] = {
    "complaints": complaints.create_app,
    "enforcement": enforcement.create_app,
    "credit": credit.create_app,
    "emergency": emergency.create_app,
}

__all__ = [
    "FACTORIES",
    "SAMPLE_UNITS",
    "Canned",
    "Faults",
    "SimLayer",
    "ThreadedServer",
    "cases_from_records",
    "enterprise_for",
    "generate_records",
    "make_uscc",
    "push",
    "run_in_thread",
    "sample_handling_units",
    "sample_units_csv",
    "sign",
]
