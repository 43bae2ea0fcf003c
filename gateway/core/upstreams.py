"""The four connectors built from the gateway's settings: one pooled client per system per process."""

from __future__ import annotations

from dataclasses import dataclass

from connectors import (
    BaseConnector,
    ComplaintsConnector,
    ConnectorConfig,
    CreditConnector,
    EmergencyConnector,
    EnforcementConnector,
)
from gateway.core.settings import Settings


def connector_config(settings: Settings, system: str) -> ConnectorConfig:
    """The connector configuration of `system` ("complaints", "enforcement", "credit", "emergency") from the settings;
    its URL is None when the system is not configured.
    """
    return ConnectorConfig(
        url=settings.system_url(system),
        token=settings.system_token(system),
        timeout_s=settings.connector_timeout_s,
        attempts=settings.connector_attempts,
        budget_s=settings.connector_budget_s,
        retry_budget=settings.retry_budget,
        circuit_window_s=settings.circuit_window_s,
        circuit_min_calls=settings.circuit_min_calls,
        circuit_failure_rate=settings.circuit_failure_rate,
        circuit_open_s=settings.circuit_open_s,
    )


@dataclass
class Upstreams:
    """The process's one connector per system. Whoever built it closes it (`aclose`); others borrow it."""

    complaints: ComplaintsConnector
    enforcement: EnforcementConnector
    credit: CreditConnector
    emergency: EmergencyConnector

    def all(self) -> dict[str, BaseConnector]:
        return {c.system: c for c in (self.complaints, self.enforcement, self.credit, self.emergency)}

    def circuit_states(self) -> dict[str, str]:
        """Per system, for /readyz: "not_configured", or its circuit's state ("closed", "half_open", "open")."""
        return {
            system: c.circuit_state.name.lower() if c.configured else "not_configured"
            for system, c in self.all().items()
        }

    def warm_up(self) -> None:
        """Build the HTTP client of each configured system now: it loads TLS certificates (tenths of a
        second of CPU each), better at start-up than inside the first request that needs the system."""
        for connector in self.all().values():
            if connector.configured:
                connector.client  # noqa: B018

    async def aclose(self) -> None:
        for connector in self.all().values():
            await connector.aclose()


def build_upstreams(settings: Settings) -> Upstreams:
    """A new set of the four connectors; the caller owns it and closes it (`Upstreams.aclose`). One per process."""
    return Upstreams(
        complaints=ComplaintsConnector(connector_config(settings, "complaints")),
        enforcement=EnforcementConnector(connector_config(settings, "enforcement")),
        credit=CreditConnector(connector_config(settings, "credit")),
        emergency=EmergencyConnector(connector_config(settings, "emergency")),
    )
