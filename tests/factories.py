"""Small, valid building blocks for tests: a unit tree and records that pass records.md."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.core.db import transaction
from gateway.ingest.units_file import import_units

UNITS_CSV = """code,name,level,parent_code
100000,国家市场监督管理总局,1,
510000,四川省市场监督管理局,2,100000
510800,广元市市场监督管理局,3,510000
510802,利州区市场监督管理局,4,510800
510802001,利州区东城市场监督管理所,5,510802
510802002,利州区西城市场监督管理所,5,510802
510811,昭化区市场监督管理局,4,510800
510811001,昭化区元坝市场监督管理所,5,510811
510100,成都市市场监督管理局,3,510000
510104,锦江区市场监督管理局,4,510100
510104001,锦江区春熙路市场监督管理所,5,510104
"""

USCC = "91110000802100433B"  # a valid Unified Social Credit Code


def event(eid: str, type_: str, at: str, data: dict[str, Any] | None = None, unit: str | None = None) -> dict[str, Any]:
    return {"id": eid, "type": type_, "at": at, "unit": unit, "data": data or {}}


def record(rid: str = "C0001", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": rid,
        "kind": "COMPLAINT",
        "channel": "HOTLINE",
        "hotline": "12315",
        "urgency": "NORMAL",
        "category": "FOOD",
        "received_at": "2024-03-01T09:30:00+08:00",
        "handling_unit": "510802001",
        "region_code": "510802",
        "respondent": {"uscc": USCC, "name": "广元某某餐饮有限公司"},
        "complainant": {"name": "张三丰", "phone": "13812345678", "real_name": True},
        "summary": "外卖餐品变质",
        "amount_involved": "1299.00",
        "recovered_amount": "100.50",
        "events": [
            event(f"{rid}-e1", "DISPATCHED", "2024-03-01T10:00:00+08:00", {"to": "510802001"}, "510802"),
            event(f"{rid}-e2", "ACCEPTED", "2024-03-04T09:00:00+08:00", unit="510802001"),
        ],
    }
    result = copy.deepcopy(base)
    result.update(copy.deepcopy(overrides))
    return result


async def load_units(sessionmaker: async_sessionmaker[AsyncSession], csv_text: str = UNITS_CSV) -> None:
    async with transaction(sessionmaker) as session:
        await import_units(session, csv_text)
