"""A report row: integer counts in, the ROW of interfaces.md out (rates, money, score).

The counts are what the database aggregates (or a Python reference computes); everything else of a row
is a function of them, so both paths share this one finishing step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kpi.policies import OBLIGATIONS, Scheme
from kpi.scoring import score

KINDS = ("COMPLAINT", "REPORT", "INQUIRY", "SUGGESTION")
CHANNELS = (
    "HOTLINE", "WEB", "WECHAT", "APP", "MINI_PROGRAM", "SMS", "LETTER", "VISIT",
    "GOV_HOTLINE_TRANSFER", "OTHER_TRANSFER",
)
HOTLINES = ("12315", "12365", "12331", "12358", "12330")


def _zeros(keys: tuple[str, ...]) -> dict[str, int]:
    return dict.fromkeys(keys, 0)


@dataclass
class RowCounts:
    received: int = 0
    by_kind: dict[str, int] = field(default_factory=lambda: _zeros(KINDS))
    by_channel: dict[str, int] = field(default_factory=lambda: _zeros(CHANNELS))
    by_hotline: dict[str, int] = field(default_factory=lambda: _zeros(HOTLINES))
    # obligation code -> [on_time, late, overdue]
    obligations: dict[str, list[int]] = field(default_factory=lambda: {c: [0, 0, 0] for c in OBLIGATIONS})
    reply_owed: int = 0
    replied: int = 0
    concluded: int = 0
    called_back: int = 0
    callback_reachable: int = 0  # latest CALLBACK is not UNREACHABLE
    satisfied: int = 0  # ... and is SATISFIED or BASICALLY_SATISFIED
    mediation_outcomes: int = 0
    mediation_succeeded: int = 0
    decided: int = 0
    case_filed: int = 0
    recovered_cents: int = 0
    # supervision orders on the row's records (supervision.md): [issued, on_time, late, overdue]
    supervision: list[int] = field(default_factory=lambda: [0, 0, 0, 0])

    def add(self, other: RowCounts) -> None:
        for name in ("received", "reply_owed", "replied", "concluded", "called_back", "callback_reachable",
                     "satisfied", "mediation_outcomes", "mediation_succeeded", "decided", "case_filed",
                     "recovered_cents"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.by_kind, other.by_kind), (self.by_channel, other.by_channel),
                             (self.by_hotline, other.by_hotline)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        for code, counts in other.obligations.items():
            mine_counts = self.obligations.setdefault(code, [0, 0, 0])
            for i in range(3):
                mine_counts[i] += counts[i]
        self.supervision = [a + b for a, b in zip(self.supervision, other.supervision, strict=True)]


def rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def money(cents: int) -> str:
    """Exact CNY with two places, from integer cents."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def rates_of(counts: RowCounts) -> dict[str, float | None]:
    on_time = sum(c[0] for c in counts.obligations.values())
    counted = sum(sum(c) for c in counts.obligations.values())
    return {
        "timeliness_rate": rate(on_time, counted),
        "reply_rate": rate(counts.replied, counts.reply_owed),
        "callback_rate": rate(counts.called_back, counts.concluded),
        "satisfaction_rate": rate(counts.satisfied, counts.callback_reachable),
        "mediation_success_rate": rate(counts.mediation_succeeded, counts.mediation_outcomes),
        "case_filing_rate": rate(counts.case_filed, counts.decided),
        "supervision_rate": rate(counts.supervision[1], sum(counts.supervision[1:])),
    }


def build_row(unit: dict[str, Any], counts: RowCounts, scheme: Scheme) -> dict[str, Any]:
    """The ROW document of interfaces.md; `rank` is left None for `rank_rows`."""
    rates = rates_of(counts)
    by_obligation = {
        code: {"on_time": c[0], "late": c[1], "overdue": c[2], "rate": rate(c[0], sum(c))}
        for code, c in ((code, counts.obligations.get(code, [0, 0, 0])) for code in OBLIGATIONS)
    }
    return {
        "unit": unit,
        "received": counts.received,
        "received_by_kind": {k: counts.by_kind.get(k, 0) for k in KINDS},
        "received_by_channel": {k: counts.by_channel.get(k, 0) for k in CHANNELS},
        "received_by_hotline": {k: counts.by_hotline.get(k, 0) for k in HOTLINES},
        "on_time": sum(c["on_time"] for c in by_obligation.values()),
        "late": sum(c["late"] for c in by_obligation.values()),
        "overdue": sum(c["overdue"] for c in by_obligation.values()),
        "timeliness_rate": rates["timeliness_rate"],
        "timeliness_by_obligation": by_obligation,
        "reply_rate": rates["reply_rate"],
        "callback_rate": rates["callback_rate"],
        "satisfaction_rate": rates["satisfaction_rate"],
        "mediation_success_rate": rates["mediation_success_rate"],
        "case_filing_rate": rates["case_filing_rate"],
        "recovered_amount": money(counts.recovered_cents),
        "supervision": {
            "issued": counts.supervision[0],
            "responded_on_time": counts.supervision[1],
            "responded_late": counts.supervision[2],
            "overdue": counts.supervision[3],
            "rate": rates["supervision_rate"],
        },
        "score": score(rates, scheme),
        "rank": None,
    }
