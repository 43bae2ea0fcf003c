"""A record's obligations (时限) and the other per-record facts behind the rates of kpi.md.

`derive` turns one record (kind, received_at, real_name, events in stored order) into facts that do not
depend on the evaluation instant, so that the state of everything at ANY `as_of` is a comparison:

- an obligation is one or more *steps*; a step holds the due date that applies while `as_of` is in
  [valid_from, valid_to). The first step starts when the obligation starts, so "not started yet" is
  simply "no step valid". Only R_DECIDE has more than one step: each EXTENDED event (before the
  fulfilling one) that moves the due date opens a new step at its instant.
- the fulfilling instant is fixed: at `as_of` the obligation is fulfilled iff fulfilled_at <= as_of.
- callbacks are steps too: the latest CALLBACK at or before `as_of` is the step valid at `as_of`.
- the rest are single instants ("owes a reply from", "replied at", ...) compared with `as_of`.

Events are given in the store's order (by `at`, ties as given), so "first" is list order and an event
listed before another is "before" it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from kpi.calendar import WorkCalendar
from kpi.policies import Policies

SHANGHAI = ZoneInfo("Asia/Shanghai")

ON_TIME, LATE, OVERDUE, PENDING = "ON_TIME", "LATE", "OVERDUE", "PENDING"
STATES = (ON_TIME, LATE, OVERDUE, PENDING)
SATISFIED_VALUES = frozenset({"SATISFIED", "BASICALLY_SATISFIED"})
UNREACHABLE = "UNREACHABLE"

_CONCLUDING = frozenset({"MEDIATION_SUCCEEDED", "MEDIATION_FAILED", "CLOSED"})
_MEDIATION_OUTCOMES = frozenset({"MEDIATION_SUCCEEDED", "MEDIATION_FAILED"})
_DECISIONS = frozenset({"CASE_FILED", "CASE_NOT_FILED"})


def local_day(instant: datetime) -> date:
    """The Asia/Shanghai calendar date of an instant."""
    return instant.astimezone(SHANGHAI).date()


@dataclass(frozen=True, slots=True)
class EventIn:
    type: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordIn:
    kind: str
    received_at: datetime
    real_name: bool
    events: Sequence[EventIn]  # in stored order


@dataclass(frozen=True, slots=True)
class ObligationStep:
    obligation: str
    step: int
    policy: str
    valid_from: datetime
    valid_to: datetime | None
    due_day: date
    fulfilled_at: datetime | None
    on_time: bool  # fulfilled on or before due_day; False while unfulfilled


@dataclass(frozen=True, slots=True)
class CallbackStep:
    step: int
    valid_from: datetime
    valid_to: datetime | None
    satisfaction: str


@dataclass(frozen=True, slots=True)
class RecordFacts:
    reply_owed_at: datetime | None = None  # from when a reply is owed (reply_rate)
    replied_at: datetime | None = None  # first REPLIED at or after reply_owed_at
    concluded_at: datetime | None = None  # COMPLAINT: the event fulfilling C_CONCLUDE (callback_rate)
    first_callback_at: datetime | None = None
    mediation_outcome_at: datetime | None = None  # COMPLAINT: first MEDIATION_* after acceptance
    mediation_succeeded: bool = False
    decided_at: datetime | None = None  # REPORT: first CASE_FILED / CASE_NOT_FILED
    case_filed: bool = False
    obligations: tuple[ObligationStep, ...] = ()
    callbacks: tuple[CallbackStep, ...] = ()


def _first(events: Sequence[EventIn], types: frozenset[str], after: int = -1) -> int | None:
    for i in range(after + 1, len(events)):
        if events[i].type in types:
            return i
    return None


def _simple(
    code: str, start: datetime, fulfilled: datetime | None, calendar: WorkCalendar, policies: Policies
) -> ObligationStep:
    policy = policies.in_force(local_day(start))
    due = calendar.add_workdays(local_day(start), policy.days[code])
    on_time = fulfilled is not None and local_day(fulfilled) <= due
    return ObligationStep(code, 0, policy.version, start, None, due, fulfilled, on_time)


def _decide_steps(
    record: RecordIn, decision: int | None, calendar: WorkCalendar, policies: Policies
) -> list[ObligationStep]:
    """R_DECIDE: 15 + the EXTENDED working days known at each instant (capped), one step per change.

    Only EXTENDED events listed before the fulfilling event count; while unfulfilled, those at or before
    `as_of` count, which is what stepping at each extension's instant gives."""
    events = record.events
    start_day = local_day(record.received_at)
    policy = policies.in_force(start_day)
    base, cap = policy.days["R_DECIDE"], policy.r_decide_extension_cap
    fulfilled = events[decision].at if decision is not None else None
    # (valid_from, due_day); an extension at or before receipt only changes the first step
    steps: list[tuple[datetime, date]] = [(record.received_at, calendar.add_workdays(start_day, base))]
    extra = 0
    for ev in events[: decision if decision is not None else len(events)]:
        if ev.type != "EXTENDED":
            continue
        extra += int(ev.data.get("working_days", 0))
        due = calendar.add_workdays(start_day, base + min(extra, cap))
        if due == steps[-1][1]:
            continue
        if ev.at <= steps[-1][0]:
            steps[-1] = (steps[-1][0], due)
        else:
            steps.append((ev.at, due))
    return [
        ObligationStep(
            "R_DECIDE", i, policy.version, valid_from,
            steps[i + 1][0] if i + 1 < len(steps) else None, due, fulfilled,
            fulfilled is not None and local_day(fulfilled) <= due,
        )
        for i, (valid_from, due) in enumerate(steps)
    ]


def _callback_steps(events: Sequence[EventIn]) -> list[CallbackStep]:
    """The latest CALLBACK at each instant; a step per change of value."""
    raw: list[tuple[datetime, str]] = []
    for ev in events:
        if ev.type != "CALLBACK":
            continue
        value = str(ev.data.get("satisfaction", UNREACHABLE))
        if raw and raw[-1][0] == ev.at:
            raw[-1] = (ev.at, value)  # same instant: the later-listed one is the latest
        else:
            raw.append((ev.at, value))
    merged: list[tuple[datetime, str]] = []
    for at, value in raw:
        if not merged or merged[-1][1] != value:
            merged.append((at, value))
    return [
        CallbackStep(i, at, merged[i + 1][0] if i + 1 < len(merged) else None, value)
        for i, (at, value) in enumerate(merged)
    ]


def derive(record: RecordIn, calendar: WorkCalendar, policies: Policies) -> RecordFacts:
    """Every fact of one record, independent of `as_of`."""
    events = record.events
    steps: list[ObligationStep] = []
    owed: datetime | None = None
    concluded_at = outcome_at = decided_at = None
    succeeded = filed = False

    if record.kind == "COMPLAINT":
        answer = _first(events, frozenset({"ACCEPTED", "REJECTED"}))
        steps.append(
            _simple("C_ACCEPT", record.received_at, events[answer].at if answer is not None else None,
                    calendar, policies)
        )
        accepted = _first(events, frozenset({"ACCEPTED"}))
        if accepted is not None:
            conclusion = _first(events, _CONCLUDING, accepted)
            concluded_at = events[conclusion].at if conclusion is not None else None
            steps.append(_simple("C_CONCLUDE", events[accepted].at, concluded_at, calendar, policies))
            outcome = _first(events, _MEDIATION_OUTCOMES, accepted)
            if outcome is not None:
                outcome_at = events[outcome].at
                succeeded = events[outcome].type == "MEDIATION_SUCCEEDED"
        rejected = _first(events, frozenset({"REJECTED"}))
        candidates = [t for t in (concluded_at, events[rejected].at if rejected is not None else None) if t]
        owed = min(candidates) if candidates else None
    elif record.kind == "REPORT":
        decision = _first(events, _DECISIONS)
        steps.extend(_decide_steps(record, decision, calendar, policies))
        if decision is not None:
            decided_at = events[decision].at
            filed = events[decision].type == "CASE_FILED"
            if record.real_name:
                reply = _first(events, frozenset({"REPLIED"}), decision)
                steps.append(
                    _simple("R_REPLY", decided_at, events[reply].at if reply is not None else None,
                            calendar, policies)
                )
                owed = decided_at

    replied_at = None
    if owed is not None:
        replied_at = next((ev.at for ev in events if ev.type == "REPLIED" and ev.at >= owed), None)
    callbacks = _callback_steps(events)
    return RecordFacts(
        reply_owed_at=owed,
        replied_at=replied_at,
        concluded_at=concluded_at,
        first_callback_at=callbacks[0].valid_from if callbacks else None,
        mediation_outcome_at=outcome_at,
        mediation_succeeded=succeeded,
        decided_at=decided_at,
        case_filed=filed,
        obligations=tuple(steps),
        callbacks=tuple(callbacks),
    )


def valid_at(valid_from: datetime, valid_to: datetime | None, as_of: datetime) -> bool:
    return valid_from <= as_of and (valid_to is None or as_of < valid_to)


def state_at(step: ObligationStep, as_of: datetime) -> str:
    """The state of an obligation whose step `step` is valid at `as_of` (kpi.md)."""
    if step.fulfilled_at is not None and step.fulfilled_at <= as_of:
        return ON_TIME if step.on_time else LATE
    return OVERDUE if step.due_day < local_day(as_of) else PENDING


@dataclass(frozen=True, slots=True)
class Deadline:
    obligation: str
    policy: str
    due_day: date
    state: str
    fulfilled_at: datetime | None  # None when not fulfilled at as_of


def deadlines_at(facts: RecordFacts, as_of: datetime) -> list[Deadline]:
    """Each started obligation with its due date and state at `as_of` (for a record's `deadlines`)."""
    out = []
    for step in facts.obligations:
        if valid_at(step.valid_from, step.valid_to, as_of):
            done = step.fulfilled_at if step.fulfilled_at is not None and step.fulfilled_at <= as_of else None
            out.append(Deadline(step.obligation, step.policy, step.due_day, state_at(step, as_of), done))
    return out


@dataclass(frozen=True, slots=True)
class FinalView:
    """What a record contributes to a report once its last fact has happened: at every `as_of` from
    `last_change_at` on, its contribution differs from this view only by obligations in `open_dues` whose due
    date is not yet behind `as_of` (PENDING there, OVERDUE here). Reports pre-aggregate this view.

    - `last_change_at`: the latest instant among receipt and every instant of the facts (a step starting or
      ending, a fulfilment, a callback, a decision, ...): the record's contribution at `as_of` is this view,
      less the open obligations not yet due, for every `as_of` at or after it;
    - `states`: obligation code -> ON_TIME, LATE or OVERDUE of its last step (unfulfilled counts as OVERDUE);
    - `open_dues`: obligation code -> due date, for the obligations no known event fulfils;
    - `policies`: the policy versions of the last steps, sorted; `last_due_day`: their latest due date;
    - `satisfaction`: the latest CALLBACK's satisfaction, None without one.
    """

    last_change_at: datetime
    states: Mapping[str, str]
    open_dues: Mapping[str, date]
    policies: tuple[str, ...]
    last_due_day: date | None
    satisfaction: str | None


def final_view(facts: RecordFacts, received_at: datetime) -> FinalView:
    """The FinalView of one record's facts (`received_at` as stored)."""
    instants = [received_at]
    instants += [t for t in (facts.reply_owed_at, facts.replied_at, facts.concluded_at, facts.first_callback_at,
                             facts.mediation_outcome_at, facts.decided_at) if t is not None]
    states: dict[str, str] = {}
    open_dues: dict[str, date] = {}
    policies: set[str] = set()
    last_due: date | None = None
    for step in facts.obligations:
        instants.append(step.valid_from)
        if step.valid_to is not None:
            instants.append(step.valid_to)
        if step.fulfilled_at is not None:
            instants.append(step.fulfilled_at)
        if step.valid_to is not None:
            continue
        policies.add(step.policy)
        last_due = step.due_day if last_due is None else max(last_due, step.due_day)
        if step.fulfilled_at is None:
            states[step.obligation] = OVERDUE
            open_dues[step.obligation] = step.due_day
        else:
            states[step.obligation] = ON_TIME if step.on_time else LATE
    for cb in facts.callbacks:
        instants.append(cb.valid_from)
        if cb.valid_to is not None:
            instants.append(cb.valid_to)
    return FinalView(
        last_change_at=max(instants),
        states=states,
        open_dues=open_dues,
        policies=tuple(sorted(policies)),
        last_due_day=last_due,
        satisfaction=facts.callbacks[-1].satisfaction if facts.callbacks else None,
    )
