"""Money (CNY): integer cents inside the gateway, exact decimal strings (`"1299.00"`) at its edges."""

from __future__ import annotations

from decimal import Decimal

from kpi.metrics import money


def money_to_cents(value: Decimal | None) -> int | None:
    """Exact: the validator allows at most two decimal places."""
    return None if value is None else int(value * 100)


def cents_to_money(cents: int | None) -> str | None:
    """`"1299.00"` from 129900: the same formatter as the KPI report's amounts (`kpi.metrics.money`)."""
    return None if cents is None else money(cents)
