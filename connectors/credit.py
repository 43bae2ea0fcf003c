"""Enterprise credit system (国家企业信用信息公示系统): enterprises by USCC, complaint flags."""

from __future__ import annotations

from typing import Any

from connectors.base import BaseConnector
from connectors.models import ComplaintFlag, Enterprise, FlagReceipt

BATCH = 100


def _enterprises(data: Any) -> list[Enterprise]:
    return [Enterprise.model_validate(e) for e in data["enterprises"]]


def _flags(data: Any) -> list[ComplaintFlag]:
    return [ComplaintFlag.model_validate(f) for f in data["flags"]]


def flag_idempotency_key(flag_id: str) -> str:
    # flag_id is stable for a finding, so the key is too: a redelivery after a crash cannot make a second flag.
    return f"flag-{flag_id}"


class CreditConnector(BaseConnector):
    system = "credit"

    async def enterprises(self, usccs: list[str]) -> list[Enterprise]:
        """Enterprises for these codes; unknown codes are simply absent."""

        async def fetch(batch: list[str]) -> list[Enterprise]:
            found = await self._call(
                "enterprises", "GET", "/api/v1/enterprises", _enterprises, params={"uscc": ",".join(batch)}
            )
            return found or []

        return await self._batched(usccs, BATCH, fetch)

    async def enterprise(self, uscc: str) -> Enterprise | None:
        found = await self.enterprises([uscc])
        return next((e for e in found if e.uscc == uscc), None)

    async def post_flag(self, flag: ComplaintFlag, *, idempotency_key: str | None = None) -> FlagReceipt:
        result = await self._call(
            "post_flag",
            "POST",
            "/api/v1/complaint-flags",
            FlagReceipt.model_validate,
            body=flag.model_dump(mode="json"),
            idempotency_key=idempotency_key or flag_idempotency_key(flag.flag_id),
        )
        assert result is not None
        return result

    async def flags(self, uscc: str) -> list[ComplaintFlag]:
        """The flags the credit system holds for this enterprise (for reconciliation)."""
        found = await self._call("list_flags", "GET", "/api/v1/complaint-flags", _flags, params={"uscc": uscc})
        return found or []
