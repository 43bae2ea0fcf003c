"""The supervisors' page `/supervision`: in headless Chromium, a city supervisor signs in (the pages' token
sign-in, OIDC off), sees the lights per county, the red and yellow lists with days left and the 环比 chart,
ticks records and issues an order, and sees it listed; over HTTP, CSRF, roles and jurisdiction."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.api.app import create_app
from gateway.core.auth import Principal, mint_token
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.ingest.store import ingest_raw
from gateway.reports.facts import kpi_config
from gateway.supervision.lights import deadline_lights
from tests.browser import browser, needs_browser, wait_for
from tests.conftest import Database
from tests.factories import load_units, record
from tests.loopback import serve

SECRET = "supervision-page-secret-long-enough-hs256"


def ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


async def seed(db: Database) -> None:
    """Complaints never accepted, received 0–20 days ago in two counties of 广元 (so every light from green to
    red appears), FOOD now and PRICE in the 30 days before; one record in another city."""
    await load_units(db.sessionmaker)
    records = [record(f"SP-{k:02d}", received_at=ago(k), events=[], category="FOOD",
                      handling_unit="510802001" if k % 2 else "510811001") for k in range(21)]
    records += [record(f"PV-{k}", received_at=ago(40 + k), events=[], category="PRICE",
                       handling_unit="510802001") for k in range(3)]
    records.append(record("CD-1", received_at=ago(25), events=[], handling_unit="510104001"))
    async with transaction(db.sessionmaker) as session:
        assert not (await ingest_raw(session, records)).rejected


async def expected_lights(db: Database) -> dict[str, tuple[int, int, int]]:
    async with db.sessionmaker() as session:
        rows = await deadline_lights(session, Principal("t", "510800", frozenset({"supervisor"})), "510800", None,
                                     None, kpi_config(), 2)
    return {r.unit.code: (r.red, r.yellow, r.green) for r in rows}


@needs_browser
async def test_supervisor_sees_lights_and_issues_an_order(db: Database) -> None:
    from selenium.webdriver.common.by import By

    await seed(db)
    lights = await expected_lights(db)
    assert lights["510800"][0] > 0 and lights["510800"][1] > 0  # the fixture has red and yellow deadlines
    servers = ExitStack()
    base = servers.enter_context(serve(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False)))
    driver = browser()
    driver.implicitly_wait(15)
    try:
        driver.get(f"{base}/supervision")
        wait_for(lambda: "/login" in driver.current_url)  # not signed in: the sign-in page, then back
        driver.find_element(By.NAME, "token").send_keys(mint_token(SECRET, "督办员", "510800", ["supervisor"]))
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_for(lambda: driver.current_url.startswith(f"{base}/supervision"))
        assert "督办监督" in driver.title

        # lights per county, the city's own total last, as the domain counts them
        rows = driver.find_elements(By.CSS_SELECTOR, "#lights tbody tr")
        shown = {re.search(r"（(\d+)）", r.find_elements(By.TAG_NAME, "td")[0].text).group(1):  # type: ignore[union-attr]
                 tuple(int(td.text) for td in r.find_elements(By.TAG_NAME, "td")[1:]) for r in rows}
        assert shown == lights and list(shown)[-1] == "510800"

        # red and yellow lists, with the working days left; nothing of another city
        watch = driver.find_element(By.ID, "watch")
        assert "CD-1" not in watch.text
        lines = watch.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(lines) == lights["510800"][0] + lights["510800"][1]
        red = [tr for tr in lines if tr.get_attribute("class") == "RED"]
        yellow = [tr for tr in lines if tr.get_attribute("class") == "YELLOW"]
        assert red and yellow
        assert all(int(tr.find_elements(By.TAG_NAME, "td")[4].text) <= 2 for tr in yellow)
        assert all(int(tr.find_elements(By.TAG_NAME, "td")[4].text) == 0 for tr in red)

        # the 环比 chart: FOOD rose (from nothing), PRICE fell and is not drawn
        chart = driver.find_element(By.ID, "rising")
        assert len(chart.find_elements(By.CSS_SELECTOR, "rect")) == 1 and "食品" in chart.text

        # tick two red records and issue an order on them
        picked = [tr.find_element(By.CSS_SELECTOR, "input[type=checkbox]") for tr in red[:2]]
        ids = sorted(p.get_attribute("value") for p in picked)
        for box in picked:
            box.click()
        note = driver.find_element(By.ID, "note")
        note.clear()
        note.send_keys("请于3个工作日内办结并反馈")
        driver.find_element(By.ID, "issue").click()
        wait_for(lambda: "issued=" in driver.current_url)
        assert "已发出督办单" in driver.find_element(By.ID, "issued").text
        orders = driver.find_element(By.ID, "orders").find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(orders) == 1
        cells = [td.text for td in orders[0].find_elements(By.TAG_NAME, "td")]
        assert cells[2] == "广元市市场监督管理局" and sorted(cells[3].split("、")) == ids and cells[5] == "待反馈"
        assert cells[7] == "请于3个工作日内办结并反馈"
    finally:
        driver.quit()
        servers.close()


def csrf_of(text: str) -> str:
    match = re.search(r'name=csrf value="([^"]+)"', text)
    assert match, "no CSRF field"
    return match.group(1)


@asynccontextmanager
async def signed_in(db: Database, unit: str, roles: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False))
    app.state.sessionmaker = db.sessionmaker
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        form = await c.get("/login")
        answer = await c.post("/login", data={"token": mint_token(SECRET, "s", unit, roles),
                                              "csrf": csrf_of(form.text), "next": "/supervision"})
        assert answer.status_code == 303
        yield c


async def test_csrf_roles_and_jurisdiction(db: Database) -> None:
    await seed(db)
    async with signed_in(db, "510800", ["supervisor"]) as c:
        page = await c.get("/supervision")
        assert page.status_code == 200 and "id=issue-form" in page.text
        fields: dict[str, Any] = {"unit": "510800", "ids": ["SP-20"], "note": "请办理", "respond_within": "3"}
        forged = await c.post("/supervision/issue", data=fields)  # no CSRF token
        assert forged.status_code == 403 and "CSRF" in forged.text
        token = csrf_of(page.text)
        nothing = await c.post("/supervision/issue", data={**fields, "ids": [], "csrf": token})
        assert nothing.status_code == 400 and "请先勾选" in nothing.text
        foreign = await c.post("/supervision/issue", data={**fields, "ids": ["CD-1"], "csrf": token})
        assert foreign.status_code == 404 and "CD-1" in foreign.text  # outside the city: as if absent
        fields["ids"] = ["SP-20", "SP-19"]  # records of both counties
        once = await c.post("/supervision/issue", data={**fields, "csrf": token, "key": "k1"})
        again = await c.post("/supervision/issue", data={**fields, "csrf": token, "key": "k1"})  # a double submit
        assert once.status_code == again.status_code == 303
        assert once.headers["location"] == again.headers["location"]  # the same order
        assert (await c.get("/supervision?unit=510104")).status_code == 403  # another city
        county = await c.get("/supervision?unit=510802")
        watch = re.search(r"<table id=watch>.*?</table>", county.text, re.S)
        assert county.status_code == 200 and watch and "SP-19" in watch.group(0) and "SP-20" not in watch.group(0)
    async with signed_in(db, "510802", ["evaluator"]) as c:  # the county sees the order, not the other county's record
        page = await c.get("/supervision")
        orders = re.search(r"<table id=orders>.*?</table>", page.text, re.S)
        assert orders and "SP-19" in orders.group(0) and "SP-20" not in orders.group(0)
    async with signed_in(db, "510800", ["evaluator"]) as c:
        page = await c.get("/supervision")
        assert page.status_code == 200 and "id=watch" in page.text and "id=issue-form" not in page.text
        refused = await c.post("/supervision/issue", data={"unit": "510800", "ids": ["SP-20"], "note": "x",
                                                           "csrf": csrf_of(page.text)})
        assert refused.status_code == 403 and "supervisor" in refused.text
    async with signed_in(db, "510800", ["reader"]) as c:
        refused = await c.get("/supervision")
        assert refused.status_code == 403 and "没有督办人员" in refused.text
    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        assert (await c.get("/supervision")).status_code == 303  # not signed in: to /login
