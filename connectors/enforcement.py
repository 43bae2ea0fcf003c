"""Enforcement-case system (执法办案系统): cases by number or by complaint, and case leads."""

from __future__ import annotations

from typing import Any

from connectors.base import BaseConnector
from connectors.models import Case, CaseLeadRequest, CaseLeadResult

BATCH = 100  # ids per request at most (external-systems.md)


def _cases(data: Any) -> list[Case]:
    return [Case.model_validate(c) for c in data["cases"]]


class EnforcementConnector(BaseConnector):
    system = "enforcement"

    async def cases_by_ids(self, case_nos: list[str]) -> list[Case]:
        async def fetch(batch: list[str]) -> list[Case]:
            found = await self._call("cases_by_ids", "GET", "/api/v1/cases", _cases, params={"ids": ",".join(batch)})
            return found or []

        return await self._batched(case_nos, BATCH, fetch)

    async def cases_by_complaint_ids(self, complaint_ids: list[str]) -> list[Case]:
        """Cases whose complaint_ids contain any of these; a case matching two batches is returned once."""

        async def fetch(batch: list[str]) -> list[Case]:
            found = await self._call(
                "cases_by_complaint_ids", "GET", "/api/v1/cases", _cases, params={"complaint_ids": ",".join(batch)}
            )
            return found or []

        cases: list[Case] = await self._batched(complaint_ids, BATCH, fetch)
        return list({c.case_no: c for c in cases}.values())

    async def create_case_lead(self, lead: CaseLeadRequest, *, idempotency_key: str | None = None) -> CaseLeadResult:
        """Suggest a case lead. Pass a stable `idempotency_key` to make a retry after a crash safe too."""
        result = await self._call(
            "create_case_lead",
            "POST",
            "/api/v1/case-leads",
            CaseLeadResult.model_validate,
            body=lead.model_dump(mode="json"),
            idempotency_key=idempotency_key,
        )
        assert result is not None
        return result
