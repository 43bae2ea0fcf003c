"""The live feed's relay (gateway/core/feed.py): what `publish_alert` accepts, writes and prunes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core import feed
from gateway.core.db import transaction
from gateway.core.feed import Alert, alerts_after, alerts_by_id, alerts_since, last_alert_id, publish_alert
from tests.conftest import Database


async def test_publish_checks_and_writes(db: Database) -> None:
    for bad in (Alert("SOMETHING", "510802"), Alert("FLAG_RAISED", ""),
                Alert("FLAG_RAISED", "510802", at=datetime(2024, 1, 1))):  # naive
        with pytest.raises(ValueError):
            async with transaction(db.sessionmaker) as session:
                await publish_alert(session, bad)
    at = datetime(2024, 3, 1, 2, tzinfo=UTC)
    async with transaction(db.sessionmaker) as session:
        first = await publish_alert(session, Alert("FLAG_RAISED", "510802", ["A", "B"], {"flagId": "f"}, at))
        second = await publish_alert(session, Alert("EARLY_WARNING", "510811"))
    assert second > first
    async with db.sessionmaker() as session:
        got = await alerts_by_id(session, [second, first, 10**9])
        assert [(a.id, a.kind, a.unit, a.complaint_ids, a.detail, a.at) for a in got] == [
            (first, "FLAG_RAISED", "510802", ["A", "B"], {"flagId": "f"}, at)] + [
            (second, "EARLY_WARNING", "510811", [], {}, got[1].at)]
        assert [a.id for a in await alerts_after(session, first)] == [second]
        assert [a.id for a in await alerts_since(session, at + timedelta(days=1))] == [second]
        assert await last_alert_id(session) == second


async def test_old_alerts_are_pruned_as_new_ones_are_written(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed, "PRUNE_EVERY", 2)
    old = datetime.now(UTC) - feed.RETENTION - timedelta(minutes=1)
    async with transaction(db.sessionmaker) as session:
        stale = await publish_alert(session, Alert("FLAG_RAISED", "510802", at=old))
    ids = []
    for _ in range(2):  # one of two consecutive ids is even: that insert prunes
        async with transaction(db.sessionmaker) as session:
            ids.append(await publish_alert(session, Alert("FLAG_RAISED", "510802")))
    async with db.sessionmaker() as session:
        assert [a.id for a in await alerts_by_id(session, [stale, *ids])] == ids
