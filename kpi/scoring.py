"""Score and rank (kpi.md "Score and rank")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kpi.policies import Scheme


def score(rates: Mapping[str, float | None], scheme: Scheme) -> float | None:
    """100 × Σ(weight × rate) / Σ(weight) over the scheme's rates that are not null; null if all are.

    A rate with weight 0 still counts as "present" but adds nothing; if only zero-weight rates are
    present the score is null (there is nothing to divide by)."""
    num = den = 0.0
    for name, weight in scheme.weights.items():
        value = rates.get(name)
        if value is not None:
            num += weight * value
            den += weight
    return 100 * num / den if den else None


def _tie_key(row: Mapping[str, Any]) -> float:
    # Scores equal in exact arithmetic can differ in the last bits of a float (40 × 0.7 + 20 × 0.1 versus
    # 40 × 0.75); 9 decimals of a 0–100 score is far finer than any real difference.
    return round(float(row["score"]), 9)


def rank_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set each row's `rank` (1, 2, 2, 4 for ties; None for a null score) and order the rows by rank,
    then unit code; rows without a score come last, by code."""
    scored = sorted((r for r in rows if r["score"] is not None), key=lambda r: (-_tie_key(r), r["unit"]["code"]))
    previous: float | None = None
    rank = 0
    for position, row in enumerate(scored, start=1):
        if _tie_key(row) != previous:
            rank, previous = position, _tie_key(row)
        row["rank"] = rank
    unscored = sorted((r for r in rows if r["score"] is None), key=lambda r: r["unit"]["code"])
    for row in unscored:
        row["rank"] = None
    return scored + unscored
