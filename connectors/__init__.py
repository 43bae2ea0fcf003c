"""Resilient clients of the four external systems (external-systems.md) and their simulators.

This package never imports `gateway`: the gateway builds `ConnectorConfig`s from its settings and hands
them in (rule of direction).
"""

from connectors.base import BaseConnector
from connectors.circuit import CircuitState
from connectors.complaints import ComplaintsConnector
from connectors.config import SYSTEMS, ConnectorConfig, System
from connectors.context import current_request_id, request_id_var
from connectors.credit import CreditConnector
from connectors.emergency import EmergencyConnector
from connectors.enforcement import EnforcementConnector
from connectors.errors import UpstreamError, UpstreamFailure, UpstreamNotConfigured, UpstreamUnavailable

CONNECTORS: dict[str, type[BaseConnector]] = {
    "complaints": ComplaintsConnector,
    "enforcement": EnforcementConnector,
    "credit": CreditConnector,
    "emergency": EmergencyConnector,
}

__all__ = [
    "CONNECTORS",
    "SYSTEMS",
    "BaseConnector",
    "CircuitState",
    "ComplaintsConnector",
    "ConnectorConfig",
    "CreditConnector",
    "EmergencyConnector",
    "EnforcementConnector",
    "System",
    "UpstreamError",
    "UpstreamFailure",
    "UpstreamNotConfigured",
    "UpstreamUnavailable",
    "current_request_id",
    "request_id_var",
]
