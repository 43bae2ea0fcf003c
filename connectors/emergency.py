"""Emergency-command system (应急指挥管理系统): incidents raised from critical records."""

from __future__ import annotations

from typing import Any

from connectors.base import BaseConnector
from connectors.models import Incident, IncidentRequest, IncidentResult

BATCH = 100


def _incidents(data: Any) -> list[Incident]:
    return [Incident.model_validate(i) for i in data["incidents"]]


class EmergencyConnector(BaseConnector):
    system = "emergency"

    async def create_incident(
        self, incident: IncidentRequest, *, idempotency_key: str | None = None
    ) -> IncidentResult:
        """Report an incident. Pass a stable `idempotency_key` to make a retry after a crash safe too."""
        result = await self._call(
            "create_incident",
            "POST",
            "/api/v1/incidents",
            IncidentResult.model_validate,
            body=incident.model_dump(mode="json"),
            idempotency_key=idempotency_key,
        )
        assert result is not None
        return result

    async def incidents_by_ids(self, incident_ids: list[str]) -> list[Incident]:
        async def fetch(batch: list[str]) -> list[Incident]:
            found = await self._call(
                "incidents_by_ids", "GET", "/api/v1/incidents", _incidents, params={"ids": ",".join(batch)}
            )
            return found or []

        return await self._batched(incident_ids, BATCH, fetch)
