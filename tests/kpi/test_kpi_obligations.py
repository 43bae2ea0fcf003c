"""Obligations, their states at an `as_of`, and the per-record facts behind the rates (kpi.md).

Every due date below is counted by hand from the State Council holiday notices."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from kpi.calendar import WorkCalendar
from kpi.obligations import (
    LATE,
    OVERDUE,
    PENDING,
    EventIn,
    RecordFacts,
    RecordIn,
    deadlines_at,
    derive,
    valid_at,
)
from kpi.obligations import ON_TIME as OK
from kpi.policies import Policies

CAL = WorkCalendar()
POLICIES = Policies()


def t(text: str) -> datetime:
    return datetime.fromisoformat(text if "+" in text else text + "+08:00")


def ev(type_: str, at: str, **data: Any) -> EventIn:
    return EventIn(type_, t(at), data)


def facts(kind: str, received: str, *events: EventIn, real_name: bool = True,
          policies: Policies = POLICIES) -> RecordFacts:
    return derive(RecordIn(kind, t(received), real_name, events), CAL, policies)


def states(f: RecordFacts, as_of: str) -> dict[str, tuple[date, str]]:
    return {d.obligation: (d.due_day, d.state) for d in deadlines_at(f, t(as_of))}


# received Friday 2024-03-01: C_ACCEPT (7) due Tuesday 2024-03-12
def test_fulfilled_on_due_date_is_on_time_and_the_day_after_late() -> None:
    on_due = facts("COMPLAINT", "2024-03-01T09:30", ev("ACCEPTED", "2024-03-12T23:30"))
    assert states(on_due, "2024-06-01T00:00") == {
        "C_ACCEPT": (date(2024, 3, 12), OK), "C_CONCLUDE": (date(2024, 5, 16), OVERDUE),
    }
    # 2024-03-13 01:00 in Shanghai is still 03-12 in UTC: the Shanghai date decides
    late = facts("COMPLAINT", "2024-03-01T09:30", ev("REJECTED", "2024-03-13T01:00", reason="x"))
    assert states(late, "2024-06-01T00:00") == {"C_ACCEPT": (date(2024, 3, 12), LATE)}


def test_overdue_versus_pending_at_as_of() -> None:
    f = facts("COMPLAINT", "2024-03-01T09:30", ev("ACCEPTED", "2024-03-20T10:00"))
    assert states(f, "2024-03-12T23:59:59") == {"C_ACCEPT": (date(2024, 3, 12), PENDING)}
    assert states(f, "2024-03-13T00:00") == {"C_ACCEPT": (date(2024, 3, 12), OVERDUE)}
    # the accepting event exists only from its instant on: then LATE, and C_CONCLUDE starts
    assert states(f, "2024-03-20T09:59:59")["C_ACCEPT"][1] == OVERDUE
    assert states(f, "2024-03-20T10:00") == {
        "C_ACCEPT": (date(2024, 3, 12), LATE), "C_CONCLUDE": (date(2024, 5, 24), PENDING),
    }


def test_deadline_across_national_day_and_adjusted_saturday() -> None:
    f = facts("COMPLAINT", "2024-09-29T10:00", ev("ACCEPTED", "2024-10-14T18:00"))
    assert states(f, "2024-10-15T00:00")["C_ACCEPT"] == (date(2024, 10, 14), OK)


def test_deadline_across_spring_festival() -> None:
    f = facts("COMPLAINT", "2024-02-08T15:00", ev("ACCEPTED", "2024-02-24T09:00"))
    assert states(f, "2024-03-01T00:00")["C_ACCEPT"] == (date(2024, 2, 23), LATE)


def test_conclude_starts_at_first_acceptance_and_takes_first_outcome_after_it() -> None:
    f = facts(
        "COMPLAINT", "2024-03-01T09:30",
        ev("MEDIATION_FAILED", "2024-03-02T09:00", reason="before acceptance: ignored"),
        ev("ACCEPTED", "2024-03-04T09:00"),
        ev("ACCEPTED", "2024-03-05T09:00"),
        ev("MEDIATION_SUCCEEDED", "2024-04-01T09:00"),
        ev("MEDIATION_FAILED", "2024-04-02T09:00", reason="later outcome: ignored"),
        ev("REPLIED", "2024-04-01T09:00"),
        ev("CALLBACK", "2024-04-03T09:00", satisfaction="SATISFIED"),
    )
    # 03-04 + 45 working days (Qingming 04-04..06 off, Sun 04-07 and 04-28 worked, 05-01..05 off): 05-09
    assert states(f, "2024-06-01T00:00")["C_CONCLUDE"] == (date(2024, 5, 9), OK)
    assert f.concluded_at == t("2024-04-01T09:00")
    assert f.mediation_outcome_at == t("2024-04-01T09:00") and f.mediation_succeeded
    assert f.reply_owed_at == t("2024-04-01T09:00") and f.replied_at == t("2024-04-01T09:00")
    assert f.first_callback_at == t("2024-04-03T09:00")


def test_rejected_complaint_owes_a_reply_and_has_no_conclusion() -> None:
    f = facts("COMPLAINT", "2024-03-01T09:30", ev("REPLIED", "2024-03-02T09:00"),
              ev("REJECTED", "2024-03-04T09:00", reason="x"))
    assert f.reply_owed_at == t("2024-03-04T09:00")
    assert f.replied_at is None  # the only reply came before the point it was owed from
    assert [s.obligation for s in f.obligations] == ["C_ACCEPT"]


# REPORT received Friday 2024-03-01: R_DECIDE 15 due 03-22; +5 -> 03-29; +15 (cap) -> 04-15 (Qingming)
def test_extension_below_cap_moves_the_due_date_from_its_instant() -> None:
    f = facts("REPORT", "2024-03-01T09:30", ev("EXTENDED", "2024-03-20T10:00", working_days=5),
              ev("CASE_FILED", "2024-03-29T16:00", case_no="A1"), real_name=False)
    assert states(f, "2024-03-20T09:59")["R_DECIDE"] == (date(2024, 3, 22), PENDING)
    assert states(f, "2024-03-23T00:00")["R_DECIDE"] == (date(2024, 3, 29), PENDING)
    assert states(f, "2024-03-29T16:00")["R_DECIDE"] == (date(2024, 3, 29), OK)
    assert "R_REPLY" not in states(f, "2024-06-01T00:00")  # not a real-name report
    assert f.reply_owed_at is None and f.decided_at == t("2024-03-29T16:00") and f.case_filed


def test_extension_above_cap_is_capped() -> None:
    exts = (ev("EXTENDED", "2024-03-20T10:00", working_days=5), ev("EXTENDED", "2024-03-27T10:00", working_days=20))
    on_cap = facts("REPORT", "2024-03-01T09:30", *exts, ev("CASE_NOT_FILED", "2024-04-15T10:00", reason="x"))
    assert states(on_cap, "2024-05-01T00:00")["R_DECIDE"] == (date(2024, 4, 15), OK)
    after_cap = facts("REPORT", "2024-03-01T09:30", *exts, ev("CASE_NOT_FILED", "2024-04-16T10:00", reason="x"))
    assert states(after_cap, "2024-05-01T00:00")["R_DECIDE"] == (date(2024, 4, 15), LATE)
    assert states(after_cap, "2024-04-16T00:00")["R_DECIDE"] == (date(2024, 4, 15), OVERDUE)
    assert not after_cap.case_filed


def test_extension_after_the_decision_does_not_count() -> None:
    f = facts("REPORT", "2024-03-01T09:30", ev("CASE_FILED", "2024-03-25T10:00", case_no="A"),
              ev("EXTENDED", "2024-03-26T10:00", working_days=5))
    assert states(f, "2024-06-01T00:00")["R_DECIDE"] == (date(2024, 3, 22), LATE)
    # while undecided, an extension known at as_of counts
    g = facts("REPORT", "2024-03-01T09:30", ev("EXTENDED", "2024-03-26T10:00", working_days=5))
    assert states(g, "2024-03-25T00:00")["R_DECIDE"] == (date(2024, 3, 22), OVERDUE)
    assert states(g, "2024-03-26T10:00")["R_DECIDE"] == (date(2024, 3, 29), PENDING)


def test_real_name_report_reply_and_first_decision() -> None:
    f = facts(
        "REPORT", "2024-03-01T09:30",
        ev("CASE_NOT_FILED", "2024-03-11T10:00", reason="x"),
        ev("CASE_FILED", "2024-03-12T10:00", case_no="later decision: ignored"),
        ev("REPLIED", "2024-03-19T10:00"),
    )
    # R_REPLY starts at the first decision (Mon 03-11) + 5 -> Mon 03-18; replied 03-19: late
    assert states(f, "2024-03-11T09:59") == {"R_DECIDE": (date(2024, 3, 22), PENDING)}
    assert states(f, "2024-04-01T00:00") == {
        "R_DECIDE": (date(2024, 3, 22), OK), "R_REPLY": (date(2024, 3, 18), LATE),
    }
    assert not f.case_filed and f.reply_owed_at == t("2024-03-11T10:00")


def test_latest_callback_decides_satisfaction() -> None:
    f = facts(
        "COMPLAINT", "2024-03-01T09:30",
        ev("CALLBACK", "2024-03-10T10:00", satisfaction="SATISFIED"),
        ev("CALLBACK", "2024-03-11T10:00", satisfaction="UNREACHABLE"),
        ev("CALLBACK", "2024-03-11T10:00", satisfaction="UNSATISFIED"),  # same instant, listed later: latest
        ev("CALLBACK", "2024-03-12T10:00", satisfaction="UNREACHABLE"),
    )

    def latest(as_of: str) -> str | None:
        hits = [c.satisfaction for c in f.callbacks if valid_at(c.valid_from, c.valid_to, t(as_of))]
        assert len(hits) <= 1
        return hits[0] if hits else None

    assert latest("2024-03-10T09:59") is None
    assert latest("2024-03-10T10:00") == "SATISFIED"
    assert latest("2024-03-11T10:00") == "UNSATISFIED"
    assert latest("2024-03-12T10:00") == "UNREACHABLE"


def test_inquiries_carry_no_obligations() -> None:
    assert facts("INQUIRY", "2024-03-01T09:30").obligations == ()
    assert facts("SUGGESTION", "2024-03-01T09:30").obligations == ()


def test_policy_switch_on_its_effective_date() -> None:
    p = Policies.from_json(
        '{"policies": [{"version": "order-121", "effective_from": "2026-04-15",'
        ' "days": {"C_ACCEPT": 5, "C_CONCLUDE": 30, "R_DECIDE": 10, "R_REPLY": 3}}]}'
    )
    before = facts("COMPLAINT", "2026-04-14T23:59", policies=p)  # Tue; 7 working days -> 04-23
    on = facts("COMPLAINT", "2026-04-15T00:00", policies=p)  # Wed; 5 working days -> 04-22
    assert [(s.policy, s.due_day) for s in before.obligations] == [("order-20", date(2026, 4, 23))]
    assert [(s.policy, s.due_day) for s in on.obligations] == [("order-121", date(2026, 4, 22))]
    # C_CONCLUDE uses the version in force when it starts (acceptance), not at receipt
    accepted = facts("COMPLAINT", "2026-04-14T10:00", ev("ACCEPTED", "2026-04-15T10:00"), policies=p)
    assert [s.policy for s in accepted.obligations] == ["order-20", "order-121"]
