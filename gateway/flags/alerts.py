"""Early warning (动态预警): a county's daily count of one category far above its trailing 28 days.

The rule, for county U, category K and day D (Asia/Shanghai), with c the records received that day:

    baseline λ = max(mean, median, 0.5) of U/K's daily counts over D-28 … D-1 (days with none count as 0)
    alert when  c ≥ 5  and  c ≥ 2·λ  and  P(X ≥ c) < 1e-6 for X ~ Poisson(λ)

so the bar is 8 records on a baseline of 0–0.5 a day, 10 on 1, 15 on 3, 26 on 8, 60 on 30 (2·λ from there).

Why these three: the Poisson tail is the natural test for counts of independent arrivals and is strict when
λ is small; real series are over-dispersed (weekdays, holidays), which makes a pure Poisson test noisy when
λ is large, so the count must also double; and a handful of records is never a surge (c ≥ 5). The larger
of mean and median errs towards silence: the median is not pulled down by quiet weekends, the mean keeps
a recent spike in view; the floor of 0.5 keeps a sparse series from having a baseline of 0. The tail is
set at 1e-6 because a province has thousands of county×category series: on steady and on weekly-seasonal
(weekends at 30 %) Poisson series with λ from 0.2 to 120 it gave no alert in 160,000 series-days, where
1e-4 gave about one in 10,000 (tests/flags/test_alerts.py checks the steady and surging cases).

A day is judged only when the store holds data from at least 28 days before it, so the first weeks of an
import do not alert against an empty past. Records handled above county level have no county and are not
counted. Evaluated whenever records are stored (the same hook as flags), so an alert appears during the
day as the count crosses the threshold; its id is stable per (county, category, day) and its count only
ever rises. Alerts are not withdrawn when late records raise the baseline afterwards.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.complaints.models import Complaint
from gateway.core.bulk import insert_ignoring_duplicates
from gateway.core.db import chunked
from gateway.core.feed import Alert, publish_alerts
from gateway.core.time import as_utc, shanghai_date
from gateway.flags.metrics import count_on_commit
from gateway.flags.models import AlertRow
from gateway.units.jurisdiction import Jurisdiction, jurisdiction_of

WINDOW_DAYS = 28
MIN_COUNT = 5
MIN_RATIO = 2.0
P_VALUE = 1e-6
BASELINE_FLOOR = 0.5
ALERT_NAMESPACE = uuid.UUID("0b7e2f5a-8c1d-5e3f-a9b2-12315a1e7700")  # fixed: alert ids must not change

# ------------------------------------------------------------------------------------------------ the rule


def baseline(trailing: Sequence[int]) -> float:
    """Expected daily count from the trailing days' counts: max(mean, median, 0.5)."""
    if not trailing:
        return BASELINE_FLOOR
    return max(statistics.fmean(trailing), float(statistics.median(trailing)), BASELINE_FLOOR)


def poisson_sf(c: int, lam: float) -> float:
    """P(X ≥ c) for X ~ Poisson(lam), summed in log space so that large λ does not underflow."""
    if c <= 0:
        return 1.0
    if c <= lam:  # the upper tail from below the mean: compute the complement instead
        return 1.0 - math.fsum(math.exp(k * math.log(lam) - lam - math.lgamma(k + 1)) for k in range(c))
    total, k = 0.0, c
    while True:
        term = math.exp(k * math.log(lam) - lam - math.lgamma(k + 1))
        total += term
        if term < total * 1e-17 or term == 0.0:
            return total
        k += 1


@lru_cache(maxsize=4096)
def threshold(lam: float) -> int:
    """The smallest daily count that alerts on baseline `lam`."""
    c = max(MIN_COUNT, math.ceil(MIN_RATIO * lam))
    while poisson_sf(c, lam) >= P_VALUE:
        c += 1
    return c


MIN_BAR = threshold(BASELINE_FLOOR)  # the lowest bar any baseline gives


def is_surge(count: int, trailing: Sequence[int]) -> bool:
    """True when `count` alerts on the baseline of `trailing` (the 28 days before, oldest last or first alike)."""
    return count >= threshold(baseline(trailing))


def alert_id(unit_code: str, category: str, day: date) -> str:
    """The stable id of the alert of county `unit_code`, category and day (UUIDv5 in a fixed namespace)."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{unit_code}|{category}|{day.isoformat()}"))


# -------------------------------------------------------------------------------------- evaluation on store


class CellSet:
    """A set of (county, category, day) cells, compact: per (county, category) the days as bits of one
    integer. A year-long load of a province touches most of its county × category × day cells; as tuples
    they would grow with the load, as bits they stay a few kilobytes per county."""

    def __init__(self) -> None:
        self._days: dict[tuple[str, str], tuple[int, int]] = {}  # (county, category) -> (first ordinal, bits)

    def __len__(self) -> int:
        return sum(bits.bit_count() for _, bits in self._days.values())

    def add(self, unit: str, category: str, day: date) -> None:
        ordinal = day.toordinal()
        base, bits = self._days.get((unit, category), (ordinal, 0))
        if ordinal < base:
            bits, base = bits << (base - ordinal), ordinal
        self._days[(unit, category)] = (base, bits | 1 << (ordinal - base))

    def batches(self, size: int = 20_000) -> Iterator[set[tuple[str, str, date]]]:
        """The cells as sets of at most about `size`, county by county."""
        batch: set[tuple[str, str, date]] = set()
        for (unit, category), (base, bits) in sorted(self._days.items()):
            while bits:
                low = bits & -bits  # the lowest day left
                batch.add((unit, category, date.fromordinal(base + low.bit_length() - 1)))
                bits ^= low
            if len(batch) >= size:
                yield batch
                batch = set()
        if batch:
            yield batch


# Bulk loads collect the cells they touch here and judge them once at the end (`deferred_alerts`): judging
# a cell reads its trailing 28 days, and the batches of a year-long load would each read the whole table.
_deferred: ContextVar[CellSet | None] = ContextVar("deferred_alert_cells", default=None)


@asynccontextmanager
async def deferred_alerts(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Within the block, stored records mark their cells; on leaving it, even by an error, the cells are
    judged in one transaction (every batch of a load commits on its own, so what was stored stays)."""
    cells = CellSet()
    token = _deferred.set(cells)
    try:
        yield
    finally:
        _deferred.reset(token)
        if len(cells):
            now = datetime.now(UTC)
            async with sessionmaker() as session, session.begin():
                for batch in cells.batches():
                    await judge_cells(session, batch, now)


async def evaluate_alerts(session: AsyncSession, records: Sequence[Any], now: datetime) -> None:
    """Judge every (county, category, day) the stored records fall in; store new alerts, raise counts."""
    keys = {(r.u4, r.category, r.received_day) for r in records if r.u4}
    if not keys:
        return
    deferred = _deferred.get()
    if deferred is not None:
        for unit, category, day in keys:
            deferred.add(unit, category, day)
        return
    await judge_cells(session, keys, now)


async def judge_cells(session: AsyncSession, keys: set[tuple[str, str, date]], now: datetime) -> None:
    """Judge each (county, category, day) in `keys` against its trailing 28 days, in the caller's transaction: alerts
    found are inserted, or their count raised (never lowered); `now` stamps them. Days less than 28 days after the
    first record stored are not judged.
    """
    first_at = (await session.execute(select(func.min(Complaint.received_at)))).scalar()
    if first_at is None:
        return
    first_day = shanghai_date(as_utc(first_at))
    keys = {k for k in keys if k[2] - timedelta(days=WINDOW_DAYS) >= first_day}
    if not keys:
        return
    # No baseline is below the floor and the bar only rises with the baseline, so a cell whose count is under
    # the floor's bar cannot alert: only the cells at or above it need their trailing 28 days.
    busy = await _counts(session, keys, min(k[2] for k in keys), max(k[2] for k in keys), MIN_BAR)
    candidates = {k for k in keys if k in busy}
    if not candidates:
        return
    counts = await _counts(
        session, candidates, min(k[2] for k in candidates) - timedelta(days=WINDOW_DAYS),
        max(k[2] for k in candidates), 1,
    )
    found: dict[str, dict[str, Any]] = {}
    for unit, cat, day in candidates:
        count, (a1, a2, a3) = counts[(unit, cat, day)]
        trailing = [counts.get((unit, cat, day - timedelta(days=k)), _NONE)[0] for k in range(1, WINDOW_DAYS + 1)]
        lam = baseline(trailing)
        bar = threshold(lam)
        if count >= bar:
            aid = alert_id(unit, cat, day)
            found[aid] = {
                "alert_id": aid, "unit_code": unit, "a1": a1, "a2": a2, "a3": a3, "category": cat, "day": day,
                "count": count, "baseline": lam, "threshold": bar, "raised_at": now, "updated_at": now,
            }
    if found:
        await _store(session, found, now)


_NONE: tuple[int, tuple[str | None, str | None, str | None]] = (0, (None, None, None))


async def _counts(
    session: AsyncSession, keys: set[tuple[str, str, date]], first: date, last: date, at_least: int
) -> dict[tuple[str, str, date], tuple[int, tuple[str | None, str | None, str | None]]]:
    """Records per (county, category, day) from `first` to `last` over the counties and categories of `keys`,
    where at least `at_least`; with each county's ancestors (u1, u2, u3)."""
    units = sorted({k[0] for k in keys})
    categories = sorted({k[1] for k in keys})
    out: dict[tuple[str, str, date], tuple[int, tuple[str | None, str | None, str | None]]] = {}
    for chunk in chunked(units):
        query = (
            select(Complaint.u4, Complaint.category, Complaint.received_day, func.count(), func.max(Complaint.u1),
                   func.max(Complaint.u2), func.max(Complaint.u3))
            .where(
                Complaint.u4.in_(chunk),
                Complaint.category.in_(categories),
                Complaint.received_day >= first,
                Complaint.received_day <= last,
            )
            .group_by(Complaint.u4, Complaint.category, Complaint.received_day)
        )
        if at_least > 1:
            query = query.having(func.count() >= at_least)
        for u4, cat, day, n, u1, u2, u3 in (await session.execute(query)).all():
            out[(u4, cat, day)] = (n, (u1, u2, u3))
    return out


async def _store(session: AsyncSession, found: dict[str, dict[str, Any]], now: datetime) -> None:
    rows = await session.execute(select(AlertRow.alert_id, AlertRow.count).where(AlertRow.alert_id.in_(found)))
    stored: dict[str, int] = {aid: n for aid, n in rows.all()}
    new = [row for aid, row in found.items() if aid not in stored]
    for aid, row in found.items():
        if aid in stored and row["count"] > stored[aid]:
            await session.execute(
                update(AlertRow).where(AlertRow.alert_id == aid).values(count=row["count"], updated_at=now)
            )
    if new:
        raised = set((await session.execute(
            insert_ignoring_duplicates(session, AlertRow).returning(AlertRow.__table__.c.alert_id), new)).scalars())
        count_on_commit(session, "alerts", len(new))
        await publish_alerts(session, [await _feed_alert(session, row) for row in new if row["alert_id"] in raised])


async def _feed_alert(session: AsyncSession, row: dict[str, Any]) -> Alert:
    """The live feed's EARLY_WARNING for a new alert: the county, and the records of its cell."""
    ids = await session.execute(
        select(Complaint.id).where(Complaint.u4 == row["unit_code"], Complaint.category == row["category"],
                                   Complaint.received_day == row["day"]).order_by(Complaint.id)
    )
    return Alert("EARLY_WARNING", row["unit_code"], list(ids.scalars()), {
        "alertId": row["alert_id"], "category": row["category"], "day": row["day"].isoformat(),
        "count": row["count"], "baseline": row["baseline"], "threshold": row["threshold"],
    })


# ---------------------------------------------------------------------------------------------- query API


@dataclass(frozen=True, slots=True)
class AlertView:
    alert_id: str
    unit_code: str
    category: str
    day: date
    count: int
    baseline: float
    threshold: int
    raised_at: datetime
    updated_at: datetime


async def list_alerts(
    session: AsyncSession,
    unit: str | None = None,
    since: date | None = None,
    jurisdiction: Jurisdiction | None = None,
    first: int = 100,
) -> list[AlertView]:
    """Alerts in `unit` (its counties; all when None) from day `since` on, newest day first.

    `jurisdiction` is the caller's: nothing outside it is listed (属地). An unknown `unit` lists nothing.
    ValueError when `first` is outside 1..500.
    """
    if not 1 <= first <= 500:
        raise ValueError("first must be between 1 and 500")
    query = select(AlertRow).order_by(AlertRow.day.desc(), AlertRow.unit_code, AlertRow.category).limit(first)
    if unit is not None:
        within_unit = await jurisdiction_of(session, unit)
        if within_unit is None:
            return []
        query = query.where(within_unit.condition(AlertRow.ancestor_columns()))
    if jurisdiction is not None:
        query = query.where(jurisdiction.condition(AlertRow.ancestor_columns()))
    if since is not None:
        query = query.where(AlertRow.day >= since)
    return [
        AlertView(r.alert_id, r.unit_code, r.category, r.day, r.count, r.baseline, r.threshold, r.raised_at,
                  r.updated_at)
        for r in (await session.execute(query)).scalars()
    ]
