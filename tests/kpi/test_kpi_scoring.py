"""Rates, score and rank from integer counts (kpi.md "Metrics of a row", "Score and rank")."""

from __future__ import annotations

from typing import Any

import pytest

from kpi.metrics import CHANNELS, HOTLINES, KINDS, RowCounts, build_row, money
from kpi.policies import DEFAULT, Scheme
from kpi.scoring import rank_rows, score


def unit(code: str) -> dict[str, Any]:
    return {"code": code, "name": f"unit {code}", "level": 3}


def test_score_skips_null_rates() -> None:
    full = {"timeliness_rate": 1.0, "reply_rate": 0.5, "satisfaction_rate": 0.8, "callback_rate": 0.0}
    assert score(full, DEFAULT) == pytest.approx(100 * (40 + 10 + 24 + 0) / 100)
    partial = {"timeliness_rate": 0.5, "reply_rate": None, "satisfaction_rate": None, "callback_rate": 1.0}
    assert score(partial, DEFAULT) == pytest.approx(100 * (20 + 10) / 50)
    assert score(dict.fromkeys(full), DEFAULT) is None
    assert score({"case_filing_rate": 0.25}, Scheme("s", {"case_filing_rate": 3})) == 25.0


def _row(code: str, s: float | None) -> dict[str, Any]:
    return {"unit": unit(code), "score": s, "rank": None}


def test_ties_share_a_rank_and_null_scores_come_last() -> None:
    rows = rank_rows([_row("d", None), _row("c", 80.0), _row("b", 90.0), _row("a", 80.0), _row("e", 70.0),
                      _row("0", None)])
    assert [(r["unit"]["code"], r["rank"]) for r in rows] == [
        ("b", 1), ("a", 2), ("c", 2), ("e", 4), ("0", None), ("d", None),
    ]


def test_scores_equal_in_exact_arithmetic_tie() -> None:
    a = score({"timeliness_rate": 0.7, "reply_rate": 0.1}, Scheme("s", {"timeliness_rate": 40, "reply_rate": 20}))
    b = score({"timeliness_rate": 0.5, "reply_rate": 0.5}, Scheme("s", {"timeliness_rate": 40, "reply_rate": 20}))
    assert a is not None and b is not None
    rows = rank_rows([_row("x", a), _row("y", b)])
    assert [r["rank"] for r in rows] == [1, 1]


def test_zero_row_lists_every_enum_with_zeros_and_null_rates() -> None:
    row = build_row(unit("510800"), RowCounts(), DEFAULT)
    assert row["received"] == 0 and row["on_time"] == row["late"] == row["overdue"] == 0
    assert list(row["received_by_kind"]) == list(KINDS) and set(row["received_by_kind"].values()) == {0}
    assert list(row["received_by_channel"]) == list(CHANNELS)
    assert list(row["received_by_hotline"]) == list(HOTLINES)
    for code in ("C_ACCEPT", "C_CONCLUDE", "R_DECIDE", "R_REPLY"):
        assert row["timeliness_by_obligation"][code] == {"on_time": 0, "late": 0, "overdue": 0, "rate": None}
    for name in ("timeliness_rate", "reply_rate", "callback_rate", "satisfaction_rate",
                 "mediation_success_rate", "case_filing_rate", "score", "rank"):
        assert row[name] is None
    assert row["recovered_amount"] == "0.00"


def test_row_rates_from_counts() -> None:
    c = RowCounts(received=3, reply_owed=4, replied=3, concluded=2, called_back=1, callback_reachable=5,
                  satisfied=4, mediation_outcomes=2, mediation_succeeded=1, decided=4, case_filed=1,
                  recovered_cents=12345678)
    c.obligations["C_ACCEPT"] = [3, 1, 0]
    c.obligations["R_DECIDE"] = [1, 0, 1]
    row = build_row(unit("x"), c, DEFAULT)
    assert (row["on_time"], row["late"], row["overdue"]) == (4, 1, 1)
    assert row["timeliness_rate"] == 4 / 6
    assert row["timeliness_by_obligation"]["C_ACCEPT"]["rate"] == 0.75
    assert row["timeliness_by_obligation"]["R_DECIDE"]["rate"] == 0.5
    assert row["reply_rate"] == 0.75 and row["callback_rate"] == 0.5 and row["satisfaction_rate"] == 0.8
    assert row["mediation_success_rate"] == 0.5 and row["case_filing_rate"] == 0.25
    assert row["recovered_amount"] == "123456.78"
    assert row["score"] == pytest.approx(100 * (40 * 4 / 6 + 20 * 0.75 + 30 * 0.8 + 10 * 0.5) / 100)


def test_counts_add_up() -> None:
    a, b = RowCounts(received=1, recovered_cents=5), RowCounts(received=2, replied=1)
    a.by_kind["REPORT"] = 1
    b.by_kind["REPORT"] = 2
    b.obligations["R_REPLY"] = [0, 1, 1]
    a.add(b)
    assert (a.received, a.replied, a.recovered_cents, a.by_kind["REPORT"]) == (3, 1, 5, 3)
    assert a.obligations["R_REPLY"] == [0, 1, 1]


def test_money_is_exact() -> None:
    assert money(0) == "0.00" and money(5) == "0.05" and money(100000000001) == "1000000000.01"
