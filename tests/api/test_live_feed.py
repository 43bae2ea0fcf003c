"""The live feed (supervision.md): `subscription { alerts }` over graphql-transport-ws at /graphql, against a
gateway served on loopback, on SQLite (polling) and PostgreSQL (LISTEN/NOTIFY).

Each message type of the protocol is exercised: connection_init / connection_ack (and the 4403 refusals),
ping / pong, subscribe / next / error / complete, and the protocol's closes (4400, 4401, 4408, 4409, 4429)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from connectors.simulators import FACTORIES, run_in_thread
from gateway.api.app import create_app
from gateway.api.gql.ws import handler_of
from gateway.core.db import transaction
from gateway.core.feed import Alert, publish_alert
from gateway.core.settings import Settings
from gateway.ingest.store import ingest_raw
from tests.api.feed_support import (
    ALERTS,
    PROTOCOL,
    SECRET,
    closed_with,
    open_feed,
    receive,
    send,
    subscribe,
    synced,
    token,
)
from tests.conftest import Database
from tests.factories import USCC, load_units, record
from tests.loopback import serve_app


@dataclass
class Live:
    url: str
    app: Any
    db: Database

    async def publish(self, *alerts: Alert) -> None:
        async with transaction(self.db.sessionmaker) as session:
            for alert in alerts:
                await publish_alert(session, alert)


@pytest.fixture
def emergency_url() -> Iterator[str]:
    with run_in_thread(FACTORIES["emergency"](token="sim-token", seed=1)) as url:
        yield url


@pytest.fixture
async def live(db: Database, emergency_url: str) -> AsyncIterator[Live]:
    await load_units(db.sessionmaker)
    settings = Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False, auto_migrate=False,
                        emergency_url=emergency_url, emergency_token="sim-token")
    app = create_app(settings)
    with serve_app(app) as base:
        yield Live(base.replace("http://", "ws://") + "/graphql", app, db)


async def test_sign_in_at_connection_init(live: Live) -> None:
    # A client that does not speak graphql-transport-ws is refused at the handshake.
    with pytest.raises(InvalidStatus) as refused:
        await connect(live.url)
    assert refused.value.response.status_code == 403
    for payload in (None, {}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": f"Bearer {token('510802', ttl=-10)}"},  # expired
                    {"Authorization": f"Bearer {token('999999')}"}):  # a unit that does not exist
        ws = await connect(live.url, subprotocols=[PROTOCOL])  # type: ignore[list-item]
        await send(ws, {"type": "connection_init", **({"payload": payload} if payload is not None else {})})
        assert await closed_with(ws) == 4403, payload
    # ping before and after the ack; a pong from the client is taken without a word
    ws = await connect(live.url, subprotocols=[PROTOCOL])  # type: ignore[list-item]
    assert ws.subprotocol == PROTOCOL
    await send(ws, {"type": "ping"})
    assert await receive(ws) == {"type": "pong"}
    await send(ws, {"type": "connection_init", "payload": {"authorization": f"Bearer {token('510802')}"}})
    assert await receive(ws) == {"type": "connection_ack"}
    await send(ws, {"type": "pong"})
    await send(ws, {"type": "ping", "payload": {"n": 1}})
    assert (await receive(ws))["type"] == "pong"
    # a second connection_init closes with 4429
    await send(ws, {"type": "connection_init", "payload": {}})
    assert await closed_with(ws) == 4429


async def test_protocol_violations_close_the_socket(live: Live) -> None:
    bearer = token("510802")
    for bad in ("not json", json.dumps([1]), json.dumps({"type": "bogus"}), json.dumps({"id": "1"})):
        ws = await open_feed(live.url, bearer)
        await ws.send(bad)
        assert await closed_with(ws) == 4400, bad
    ws = await open_feed(live.url, bearer)
    await ws.send(b"\x00\x01")  # a binary frame
    assert await closed_with(ws) == 4400
    for message in ({"type": "subscribe", "payload": {"query": ALERTS}},  # no id
                    {"type": "subscribe", "id": "1"},  # no payload
                    {"type": "subscribe", "id": "1", "payload": {"query": ALERTS, "variables": [1]}}):
        ws = await open_feed(live.url, bearer)
        await send(ws, message)
        assert await closed_with(ws) == 4400, message
    # subscribing before the ack
    ws = await connect(live.url, subprotocols=[PROTOCOL])  # type: ignore[list-item]
    await send(ws, {"type": "subscribe", "id": "1", "payload": {"query": ALERTS, "variables": {"unit": "510802"}}})
    assert await closed_with(ws) == 4401
    # the same operation id twice while the first runs
    ws = await open_feed(live.url, bearer)
    await subscribe(ws, "s1", "510802")
    assert await synced(ws) == []
    await send(ws, {"type": "subscribe", "id": "s1", "payload": {"query": ALERTS, "variables": {"unit": "510802"}}})
    assert await closed_with(ws) == 4409
    # no connection_init in time
    handler_of(live.app).connection_init_wait_timeout = timedelta(seconds=0.3)
    ws = await connect(live.url, subprotocols=[PROTOCOL])  # type: ignore[list-item]
    assert await closed_with(ws) == 4408


async def test_subscribe_refusals_are_error_messages(live: Live) -> None:
    ws = await open_feed(live.url, token("510802"))

    async def refused(op_id: str, payload: dict[str, Any]) -> list[str]:
        await send(ws, {"id": op_id, "type": "subscribe", "payload": payload})
        message = await receive(ws)
        assert message["type"] == "error" and message["id"] == op_id, message
        return [e["extensions"]["code"] for e in message["payload"]]

    assert await refused("a", {"query": "{ orgUnit(code: \"510802\") { code } }"}) == ["BAD_USER_INPUT"]
    assert await refused("b", {"query": "subscription { alerts(unit: 1) { kind } }"}) == [
        "GRAPHQL_VALIDATION_FAILED"]
    assert await refused("c", {"query": "subscription {"}) == ["GRAPHQL_PARSE_FAILED"]
    assert await refused("d", {"query": ALERTS, "variables": {}}) == ["BAD_USER_INPUT"]  # $unit missing
    for unit in ("510811", "510800", "999999"):  # a sibling, the superior, no such unit
        assert await refused(f"e{unit}", {"query": ALERTS, "variables": {"unit": unit}}) == ["FORBIDDEN"]
    assert await refused("f", {"query": ALERTS, "variables": {"unit": "510802", "kinds": []}}) == ["BAD_USER_INPUT"]
    inner = "code"
    for _ in range(13):
        inner = f"children {{ {inner} }}"
    deep = f'subscription {{ alerts(unit: "510802") {{ unit {{ {inner} }} }} }}'
    assert await refused("g", {"query": deep}) == ["QUERY_TOO_COMPLEX"]
    # the connection stays usable after each refusal
    await subscribe(ws, "ok", "510802")
    assert await synced(ws) == []

    # a token without a role that may listen
    ws = await open_feed(live.url, token("510802", roles="credit"))
    await send(ws, {"id": "r", "type": "subscribe", "payload": {"query": ALERTS, "variables": {"unit": "510802"}}})
    message = await receive(ws)
    assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "FORBIDDEN"

    # the token is checked again at subscribe: this one expired after the ack
    ws = await open_feed(live.url, token("510802", ttl=1))
    await asyncio.sleep(2.1)
    await send(ws, {"id": "x", "type": "subscribe", "payload": {"query": ALERTS, "variables": {"unit": "510802"}}})
    message = await receive(ws)
    assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # over HTTP a subscription is a clear error, not an empty answer
    base = live.url.replace("ws://", "http://")
    async with httpx.AsyncClient() as client:
        answer = await client.post(base, json={"query": ALERTS, "variables": {"unit": "510802"}},
                                   headers={"Authorization": f"Bearer {token('510802')}"})
    assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_alerts_reach_their_subtree_only(live: Live) -> None:
    county = await open_feed(live.url, token("510802"))
    await subscribe(county, "all", "510802")
    await subscribe(county, "flags", "510802", ["FLAG_RAISED"])
    sibling = await open_feed(live.url, token("510811", roles="reader"))
    await subscribe(sibling, "all", "510811")
    city = await open_feed(live.url, token("510000"))
    await subscribe(city, "city", "510800")
    for ws in (county, county, sibling, city):
        assert await synced(ws) == []

    at = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)
    started = time.monotonic()
    await live.publish(
        Alert("SUPERVISION_ISSUED", "510811001", ["R-SIB"], {"orderId": "o1"}, at),  # the sibling county's station
        Alert("FLAG_RAISED", "510802001", ["R-OWN"], {"flagId": "f1"}, at),  # the county's station
        Alert("EARLY_WARNING", "510800", ["R-CITY"], {}, at),  # the city itself: above the county
    )
    got = await receive(county)
    assert time.monotonic() - started < 2.0  # within 2 s of the commit
    both = {m["id"]: m for m in (got, await receive(county))}
    assert set(both) == {"all", "flags"} and {m["type"] for m in both.values()} == {"next"}
    alert = both["all"]["payload"]["data"]["alerts"]
    assert alert == {"kind": "FLAG_RAISED", "at": "2024-03-01T10:00:00+08:00",
                     "unit": {"code": "510802001", "name": "利州区东城市场监督管理所"},
                     "complaintIds": ["R-OWN"], "detail": {"flagId": "f1"}}
    assert (await receive(sibling))["payload"]["data"]["alerts"]["complaintIds"] == ["R-SIB"]
    city_ids = [(await receive(city))["payload"]["data"]["alerts"]["complaintIds"] for _ in range(3)]
    assert sorted(map(tuple, city_ids)) == [("R-CITY",), ("R-OWN",), ("R-SIB",)]

    # Nothing else reached the county: the next thing it hears is the next alert of its own subtree.
    await live.publish(Alert("EARLY_WARNING", "510802", ["R-NEXT"], {}))
    got = await receive(county)
    assert (got["id"], got["payload"]["data"]["alerts"]["complaintIds"]) == ("all", ["R-NEXT"])
    # ... and a rolled-back transaction announces nothing
    with pytest.raises(RuntimeError):
        async with transaction(live.db.sessionmaker) as session:
            await publish_alert(session, Alert("FLAG_RAISED", "510802", ["R-ROLLED-BACK"], {}))
            raise RuntimeError("rollback")
    await live.publish(Alert("FLAG_RAISED", "510802", ["R-COMMITTED"], {}))
    seen = [(m["id"], m["payload"]["data"]["alerts"]["complaintIds"]) for m in [await receive(county),
                                                                                 await receive(county)]]
    assert sorted(seen) == [("all", ["R-COMMITTED"]), ("flags", ["R-COMMITTED"])]

    # complete ends one operation; the other goes on
    await send(county, {"id": "flags", "type": "complete"})
    await send(county, {"type": "ping"})
    assert await synced(county) == []
    await live.publish(Alert("FLAG_RAISED", "510802", ["R-AFTER"], {}))
    got = await receive(county)
    assert got["id"] == "all"
    with pytest.raises(TimeoutError):
        await receive(county, timeout=0.6)
    # the id of a completed operation may be used again
    await subscribe(county, "flags", "510802", ["FLAG_RAISED"])
    assert await synced(county) == []


def critical_food(rid: str, unit: str) -> dict[str, Any]:
    return record(rid, urgency="CRITICAL", category="FOOD", handling_unit=unit,
                  respondent={"uscc": USCC, "name": "某食品公司"}, events=[])


async def test_alerts_of_real_changes(live: Live) -> None:
    ws = await open_feed(live.url, token("510802", roles="supervisor,operator"))
    await subscribe(ws, "s", "510802")
    assert await synced(ws) == []
    # A CRITICAL food record: a CRITICAL_SAFETY flag and an escalation to emergency command, announced when
    # the transaction that stores it commits.
    async with transaction(live.db.sessionmaker) as session:
        assert not (await ingest_raw(session, [critical_food("CR-1", "510802001"),
                                               critical_food("CR-2", "510811001")])).rejected
    kinds = {}
    for _ in range(2):
        alert = (await receive(ws))["payload"]["data"]["alerts"]
        kinds[alert["kind"]] = alert
    assert set(kinds) == {"FLAG_RAISED", "CRITICAL_ESCALATION"}
    assert kinds["FLAG_RAISED"]["complaintIds"] == ["CR-1"]
    assert kinds["FLAG_RAISED"]["detail"]["reason"] == "CRITICAL_SAFETY"
    assert kinds["CRITICAL_ESCALATION"]["detail"] == {"source": "record", "incidentId": None,
                                                      "categories": ["FOOD"], "urgency": "CRITICAL"}
    # Stored again: nothing new, nothing announced.
    async with transaction(live.db.sessionmaker) as session:
        await ingest_raw(session, [critical_food("CR-1", "510802001")])
    # An operator's escalation, retried: one alert.
    async with httpx.AsyncClient(base_url=live.url.replace("ws://", "http://").removesuffix("/graphql")) as client:
        for _ in range(2):
            answer = await client.post("/graphql", json={
                "query": 'mutation { escalateIncident(complaintIds: ["CR-1"], summary: "变质食品") { incidentId } }'},
                headers={"Authorization": f"Bearer {token('510802', 'operator')}"})
            assert answer.json()["data"]["escalateIncident"]["incidentId"], answer.text
    alert = (await receive(ws))["payload"]["data"]["alerts"]
    assert alert["kind"] == "CRITICAL_ESCALATION" and alert["detail"]["source"] == "escalation"
    assert alert["detail"]["incidentId"] == answer.json()["data"]["escalateIncident"]["incidentId"]
    # An early warning: a county's FOOD records far above its (empty) last 28 days.
    history = record("EW-0", received_at="2024-02-01T09:00:00+08:00", handling_unit="510802002", events=[],
                     category="PRICE", respondent=None)
    surge = [record(f"EW-{n}", received_at=f"2024-03-05T{8 + n:02d}:00:00+08:00", handling_unit="510802002",
                    category="COSMETICS", respondent=None, events=[]) for n in range(1, 9)]
    async with transaction(live.db.sessionmaker) as session:
        assert not (await ingest_raw(session, [history])).rejected
    async with transaction(live.db.sessionmaker) as session:
        assert not (await ingest_raw(session, surge)).rejected
    alert = (await receive(ws))["payload"]["data"]["alerts"]
    assert alert["kind"] == "EARLY_WARNING" and alert["unit"]["code"] == "510802"
    assert alert["complaintIds"] == [f"EW-{n}" for n in range(1, 9)]
    assert alert["detail"]["category"] == "COSMETICS" and alert["detail"]["count"] == 8
    with pytest.raises(TimeoutError):
        await receive(ws, timeout=0.6)


async def gql(live: Live, query: str, variables: dict[str, Any], bearer: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        answer = await client.post(live.url.replace("ws://", "http://"), json={"query": query, "variables": variables},
                                   headers={"Authorization": f"Bearer {bearer}"})
    body: dict[str, Any] = answer.json()
    assert not body.get("errors"), body
    return body["data"]


async def test_supervision_orders_are_announced_to_each_unit_with_its_own_records(live: Live) -> None:
    async with transaction(live.db.sessionmaker) as session:
        assert not (await ingest_raw(session, [record("SO-1", handling_unit="510802001", events=[]),
                                               record("SO-2", handling_unit="510811001", events=[])])).rejected
    county = await open_feed(live.url, token("510802", roles="operator"))
    await subscribe(county, "c", "510802")
    sibling = await open_feed(live.url, token("510811", roles="operator"))
    await subscribe(sibling, "s", "510811")
    city = await open_feed(live.url, token("510800"))
    await subscribe(city, "city", "510800", ["SUPERVISION_ISSUED", "SUPERVISION_RESPONDED"])
    for ws in (county, sibling, city):
        assert await synced(ws) == []

    issued = await gql(live, """mutation { issueSupervision(complaintIds: ["SO-1", "SO-2"], note: "=请速办",
        respondWithin: 3) { id dueDate } }""", {}, token("510800", "supervisor"))
    order = issued["issueSupervision"]
    alert = (await receive(county))["payload"]["data"]["alerts"]
    assert (alert["kind"], alert["unit"]["code"], alert["complaintIds"]) == ("SUPERVISION_ISSUED", "510802001",
                                                                              ["SO-1"])
    assert alert["detail"] == {"orderId": order["id"], "issuedBy": "510800", "dueDate": order["dueDate"],
                               "note": "=请速办", "state": "OPEN"}
    alert = (await receive(sibling))["payload"]["data"]["alerts"]
    assert (alert["kind"], alert["complaintIds"]) == ("SUPERVISION_ISSUED", ["SO-2"])
    both = [(await receive(city))["payload"]["data"]["alerts"]["complaintIds"] for _ in range(2)]
    assert sorted(both) == [["SO-1"], ["SO-2"]]

    await gql(live, "mutation($id: ID!) { respondSupervision(orderId: $id, note: \"已办结\") { state } }",
              {"id": order["id"]}, token("510802", "operator"))
    alert = (await receive(county))["payload"]["data"]["alerts"]
    assert (alert["kind"], alert["unit"]["code"], alert["complaintIds"]) == ("SUPERVISION_RESPONDED", "510802",
                                                                              ["SO-1"])
    assert alert["detail"]["state"] == "RESPONDED_ON_TIME" and alert["detail"]["respondedBy"] == "510802"
    assert (await receive(city))["payload"]["data"]["alerts"]["kind"] == "SUPERVISION_RESPONDED"
    with pytest.raises(TimeoutError):  # the sibling county hears nothing of another county's answer
        await receive(sibling, timeout=0.6)
