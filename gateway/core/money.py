"""Money (CNY): integer cents inside the gateway, exact decimal strings (`"1299.00"`) at its edges."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from kpi.metrics import money


def money_to_cents(value: Decimal | None) -> int | None:
    """Whole cents of an amount in CNY: exact for the records' amounts (the validator allows at most two
    decimal places); an upstream amount with more is rounded half to even, as `format(value, ".2f")` does."""
    return None if value is None else int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def cents_to_money(cents: int | None) -> str | None:
    """`"1299.00"` from 129900: the same formatter as the KPI report's amounts (`kpi.metrics.money`)."""
    return None if cents is None else money(cents)
