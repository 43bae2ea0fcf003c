"""Early warning: the rule on synthetic steady and surging series, and alerts raised from stored records."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import pytest
from prometheus_client import REGISTRY

from gateway.flags.alerts import alert_id, baseline, is_surge, list_alerts, poisson_sf, threshold
from gateway.units.jurisdiction import Jurisdiction
from tests.conftest import Database
from tests.flags.support import rec, store

RATES = (0.2, 1.0, 3.0, 8.0, 30.0, 120.0)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth), in steps of at most 30 so that exp(-λ) never underflows."""
    total = 0
    while lam > 0:
        step, lam = min(lam, 30.0), lam - min(lam, 30.0)
        limit, k, p = math.exp(-step), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        total += k
    return total


def series(rng: random.Random, lam: float, weekly: bool, days: int = 365) -> list[int]:
    # weekly: weekends at 30 % of weekdays, the over-dispersion real hotline data shows
    return [poisson(rng, lam * (0.3 if weekly and d % 7 in (5, 6) else 1.0)) for d in range(days)]


def alerts_in(counts: list[int]) -> list[int]:
    return [d for d in range(28, len(counts)) if is_surge(counts[d], counts[d - 28 : d])]


def test_poisson_tail_matches_the_direct_sum() -> None:
    for lam in (0.5, 2.0, 7.5):
        for c in range(0, 25):
            direct = 1 - sum(math.exp(-lam) * lam**k / math.factorial(k) for k in range(c))
            assert poisson_sf(c, lam) == pytest.approx(direct, rel=1e-9, abs=1e-15)
    # A large λ: no overflow, and the tail 3.16 σ out is about what the normal approximation says (8e-4).
    assert 5e-4 < poisson_sf(1100, 1000.0) < 1.2e-3
    assert poisson_sf(2500, 1000.0) < 1e-300


def test_thresholds_on_flat_baselines() -> None:
    assert [threshold(baseline([n] * 28)) for n in (0, 1, 3, 8, 30, 120)] == [8, 10, 15, 26, 60, 240]
    assert baseline([0] * 27 + [50]) == pytest.approx(50 / 28)  # the mean keeps a recent spike in view
    assert baseline([10] * 20 + [3] * 8) == 10  # quiet days do not pull the bar down


@pytest.mark.parametrize("weekly", [False, True], ids=["steady", "weekly"])
def test_quiet_on_steady_series(weekly: bool) -> None:
    rng = random.Random(12315)
    found = {lam: alerts_in(series(rng, lam, weekly)) for _ in range(8) for lam in RATES}
    assert all(days == [] for days in found.values()), found


@pytest.mark.parametrize("lam", RATES)
def test_fires_on_a_real_surge_and_only_there(lam: float) -> None:
    rng = random.Random(7)
    for weekly in (False, True):
        counts = series(rng, lam, weekly, days=120)
        counts[100] = math.ceil(3 * lam) + 8  # a food-poisoning cluster: three times the normal day, and more
        assert alerts_in(counts) == [100]


def test_a_handful_is_never_a_surge() -> None:
    assert not is_surge(4, [0] * 28)
    assert not is_surge(7, [0] * 28)
    assert is_surge(8, [0] * 28)


# ---------------------------------------------------------------------------------------------- from the store


def food(rid: str, day: date, unit: str = "510802001") -> dict[str, object]:
    return rec(rid, f"{day.isoformat()}T10:00:00+08:00", kind="INQUIRY", category="FOOD", unit=unit)


async def test_alert_raised_from_stored_records_once_and_jurisdiction_scoped(world: Database) -> None:
    start = date(2024, 3, 1)
    steady = [food(f"D{d}", start + timedelta(days=d)) for d in range(40)]  # one a day for 40 days
    await store(world, steady)
    async with world.sessionmaker() as session:
        assert await list_alerts(session) == []
    raised_before = REGISTRY.get_sample_value("gateway_alerts_raised_total") or 0.0
    spike_day = start + timedelta(days=40)
    spike = [food(f"S{i}", spike_day) for i in range(9)]
    await store(world, spike[:7])  # 7 + nothing: under the bar of 10 on a baseline of 1
    async with world.sessionmaker() as session:
        assert await list_alerts(session) == []
    await store(world, spike)  # 9 that day... still under 10
    await store(world, [food("S9", spike_day), food("S10", spike_day, unit="510802002")])  # 11 in the county
    await store(world, spike)  # the same again changes nothing
    async with world.sessionmaker() as session:
        [alert] = await list_alerts(session)
        assert (alert.unit_code, alert.category, alert.day, alert.count) == ("510802", "FOOD", spike_day, 11)
        assert alert.alert_id == alert_id("510802", "FOOD", spike_day)
        assert alert.baseline == 1.0 and alert.threshold == 10
        assert [a.alert_id for a in await list_alerts(session, unit="510800")] == [alert.alert_id]  # its city
        assert await list_alerts(session, unit="510104") == []  # another county
        assert await list_alerts(session, jurisdiction=Jurisdiction("510811", 4)) == []  # a sibling county
        assert len(await list_alerts(session, unit="510000", jurisdiction=Jurisdiction("510800", 3))) == 1
        assert await list_alerts(session, since=spike_day + timedelta(days=1)) == []
    assert (REGISTRY.get_sample_value("gateway_alerts_raised_total") or 0.0) == raised_before + 1


async def test_no_alert_without_28_days_of_history(world: Database) -> None:
    day = date(2024, 5, 20)
    await store(world, [food("H0", day - timedelta(days=27))] + [food(f"H{i}", day) for i in range(1, 30)])
    async with world.sessionmaker() as session:
        assert await list_alerts(session) == []
