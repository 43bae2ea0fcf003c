"""The evaluators' page: sign-in through a real OpenID provider on loopback (oidc-provider-mock) in headless
Chromium, then the report, a download and sign-out; and, over HTTP, the session, CSRF and what the page says."""

from __future__ import annotations

import csv
import io
import re
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from gateway.api.session import principal_from_claims
from gateway.core.auth import mint_token
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.ingest.store import ingest_raw
from tests.browser import browser, needs_browser, wait_for
from tests.conftest import Database
from tests.factories import event, load_units, record
from tests.loopback import serve

SECRET = "page-test-secret-long-enough-for-hs256"


async def seed(db: Database) -> None:
    await load_units(db.sessionmaker)
    on_time = [event("a1", "ACCEPTED", "2024-03-04T09:00:00+08:00")]
    late = [event("b1", "ACCEPTED", "2024-03-20T09:00:00+08:00")]
    async with transaction(db.sessionmaker) as session:
        await ingest_raw(session, [
            record("PG-1", handling_unit="510802001", events=on_time, summary="=HYPERLINK(1)"),
            record("PG-2", handling_unit="510811001", events=late, received_at="2024-02-01T09:30:00+08:00"),
            record("PG-3", handling_unit="510104001", events=on_time),
        ])


@pytest.fixture
def idp() -> Iterator[str]:
    """A real OpenID provider on loopback with one evaluator of the Sichuan bureau."""
    from oidc_provider_mock import User, run_server_in_thread

    users = [User(sub="eval-sc", claims={"unit": "510000", "roles": ["evaluator"], "name": "评价员"})]
    with run_server_in_thread(port=0, user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


@needs_browser
async def test_sign_in_with_oidc_see_the_report_and_sign_out(db: Database, idp: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    await seed(db)
    settings = Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False, oidc_issuer=idp,
                        oidc_client_id="gateway-reports", oidc_client_secret="client-secret")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    servers = ExitStack()
    base = servers.enter_context(serve(settings))
    driver = browser(downloads)
    driver.implicitly_wait(15)
    try:
        driver.get(f"{base}/reports")
        wait_for(lambda: driver.current_url.startswith(idp))  # sent to the identity platform, with PKCE
        assert "code_challenge_method=S256" in driver.current_url and "code_challenge=" in driver.current_url
        driver.find_element(By.CSS_SELECTOR, "button[name=sub][value=eval-sc]").click()
        wait_for(lambda: driver.current_url.startswith(f"{base}/reports"))
        assert "eval-sc" in driver.find_element(By.ID, "who").text
        cookie = next(c for c in driver.get_cookies() if c["name"] == "gateway_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]  # plain HTTP here

        # the unit comes from the tree of the evaluator's jurisdiction; only valid levels are offered
        units = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#unit option")]
        assert units[0] == "510000" and "510802" in units and "510802001" not in units
        Select(driver.find_element(By.ID, "unit")).select_by_value("510000")
        Select(driver.find_element(By.ID, "level")).select_by_value("4")
        Select(driver.find_element(By.ID, "period")).select_by_value("custom")
        for field, value in (("from", "2024-02-01"), ("to", "2024-03-31")):
            element = driver.find_element(By.ID, field)
            driver.execute_script("arguments[0].value = arguments[1]", element, value)
        driver.find_element(By.ID, "show").click()

        table = driver.find_element(By.ID, "report")
        driver.save_screenshot(str(tmp_path / "report.png"))
        text = table.text
        assert "利州区市场监督管理局" in text and "昭化区市场监督管理局" in text and "锦江区市场监督管理局" in text
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == 4  # the three counties and the total
        assert rows[-1].find_elements(By.TAG_NAME, "td")[1].text == "3"
        assert len(driver.find_elements(By.CSS_SELECTOR, "#scores circle")) == 3
        assert len(driver.find_elements(By.CSS_SELECTOR, "#monthly circle")) == 2  # February and March
        # sortable: a click on 受理总量 orders the unit rows by it
        header = driver.find_element(By.XPATH, "//table[@id='report']//th[contains(., '受理总量')]")
        header.click()
        header.click()  # descending
        first = table.find_elements(By.CSS_SELECTOR, "tbody tr.unit")[0].find_elements(By.TAG_NAME, "td")[1].text
        assert first == "1"

        driver.find_element(By.ID, "download-csv").click()
        files = wait_for(lambda: list(downloads.glob("*.csv")))
        body = files[0].read_bytes()
        assert body.startswith(b"\xef\xbb\xbf") and b"510802" in body

        driver.find_element(By.ID, "sign-out").click()
        # the identity platform asks to confirm ending its session, then sends the browser back
        wait_for(lambda: driver.current_url.startswith(idp))
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_for(lambda: driver.current_url.startswith(f"{base}/signed-out"))
        driver.get(f"{base}/reports")
        wait_for(lambda: driver.current_url.startswith(idp))  # signed out: sign-in starts again
    finally:
        driver.quit()
        servers.close()


# ------------------------------------------------------------------------------------------- over HTTP


def csrf_of(html_text: str) -> str:
    match = re.search(r'name=csrf value="([^"]+)"', html_text)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def client(db: Database, base_url: str = "http://testserver", **extra: Any) -> httpx.AsyncClient:
    app = create_app(Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False, **extra))
    app.state.sessionmaker = db.sessionmaker
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def sign_in(c: httpx.AsyncClient, unit: str = "510000", roles: tuple[str, ...] = ("evaluator",)) -> None:
    form = await c.get("/login")
    assert form.status_code == 200 and "令牌" in form.text  # OIDC off: the token form
    answer = await c.post("/login", data={"token": mint_token(SECRET, "e", unit, list(roles)),
                                          "csrf": csrf_of(form.text), "next": "/reports"})
    assert answer.status_code == 303 and answer.headers["location"] == "/reports"


async def test_session_csrf_and_refusals_in_chinese(db: Database) -> None:
    await seed(db)
    async with await client(db) as c:
        assert (await c.get("/reports")).status_code == 303  # not signed in: to /login
        await sign_in(c)
        page = await c.get("/reports")
        assert page.status_code == 200 and "绩效考核报告" in page.text
        token = csrf_of(page.text)
        fields = {"unit": "510000", "level": "4", "from": "2024-02-01", "to": "2024-03-31", "period": "custom"}
        forged = await c.post("/reports", data=fields)  # no CSRF token: refused, nothing computed
        assert forged.status_code == 403 and "CSRF" in forged.text
        shown = await c.post("/reports", data=fields | {"csrf": token})
        assert shown.status_code == 200 and "利州区市场监督管理局" in shown.text
        foreign = await c.post("/reports", data=fields | {"csrf": token, "unit": "520000"})
        assert foreign.status_code == 403 and "不在您的管辖范围内" in foreign.text
        wrong_level = await c.post("/reports", data=fields | {"csrf": token, "level": "2"})
        assert wrong_level.status_code == 400 and "评价层级应为 3–5" in wrong_level.text
        bad_date = await c.post("/reports", data=fields | {"csrf": token, "from": "2024-13-01"})
        assert bad_date.status_code == 400 and "日期格式" in bad_date.text
        empty = await c.post("/reports", data=fields | {"csrf": token, "from": "2023-01-01", "to": "2023-01-31"})
        assert "没有受理记录" in empty.text and "id=report" not in empty.text
        download = await c.post("/reports/download", data=fields | {"csrf": token, "format": "csv"})
        lines = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert sorted(r["unit_code"] for r in lines) == ["510000", "510104", "510802", "510811"]
        assert (await c.post("/reports/download", data=fields | {"format": "csv"})).status_code == 403
        out = await c.post("/logout", data={"csrf": token})
        assert out.status_code == 303
        assert (await c.get("/reports")).status_code == 303  # the session is gone
    async with await client(db) as c:
        await sign_in(c, roles=("reader",))
        refused = await c.get("/reports")
        assert refused.status_code == 403 and "没有评价人员" in refused.text
    async with await client(db) as c:
        bad = await c.post("/login", data={"token": "not-a-token", "csrf": csrf_of((await c.get("/login")).text)})
        assert bad.status_code == 401 and "令牌无效" in bad.text


async def test_bearer_tokens_keep_working_and_presets_fill_dates(db: Database) -> None:
    await seed(db)
    async with await client(db) as c:
        auth = {"Authorization": f"Bearer {mint_token(SECRET, 'tool', '510800', ['evaluator'])}"}
        page = await c.get("/reports?unit=510800&period=last_year", headers=auth)
        assert page.status_code == 200
        year = time.localtime().tm_year - 1
        assert f'value="{year}-01-01"' in page.text and f'value="{year}-12-31"' in page.text
        assert (await c.get("/reports", headers={"Authorization": "Bearer nope"})).status_code == 401
        # the units offered are the caller's and below: Chengdu is not Guangyuan's
        assert "510104" not in page.text and "510802" in page.text


async def test_cookie_is_secure_behind_tls(db: Database) -> None:
    await load_units(db.sessionmaker)
    async with await client(db, base_url="https://gateway.test") as c:
        form = await c.get("/login")
        cookie = form.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie


def test_principal_from_claims() -> None:
    settings = Settings(jwt_secret=SECRET, oidc_unit_claim="org", oidc_roles_claim="groups")
    principal = principal_from_claims(settings, {"sub": "u1", "org": "510800", "groups": "evaluator admin pii"})
    assert principal.unit == "510800" and principal.roles == frozenset({"evaluator", "pii"})
    with pytest.raises(Exception, match="GATEWAY_OIDC_UNIT_CLAIM"):
        principal_from_claims(settings, {"sub": "u1", "unit": "510800"})


async def test_next_after_sign_in_stays_on_this_site(db: Database) -> None:
    await load_units(db.sessionmaker)
    async with await client(db) as c:
        form = await c.get("/login?next=//evil.example/x")
        answer = await c.post("/login", data={"token": mint_token(SECRET, "e", "510000", ["evaluator"]),
                                              "csrf": csrf_of(form.text), "next": "https://evil.example/"})
        assert answer.headers["location"] == "/reports"


async def test_incomplete_calendar_is_explained_in_words(db: Database) -> None:
    """Mediation accepted in the last December the calendar covers is due 45 working days later, in a year
    no calendar covers (in 2026, C_CONCLUDE due dates fall in 2027)."""
    from gateway.reports.build import load_config

    y = max(load_config().calendar.covered_years)
    await load_units(db.sessionmaker)
    accepted = [event("n1", "ACCEPTED", f"{y}-12-02T09:00:00+08:00")]
    async with transaction(db.sessionmaker) as session:
        await ingest_raw(session, [record("DEC-1", received_at=f"{y}-12-01T09:30:00+08:00", events=accepted)])
    async with await client(db) as c:
        auth = {"Authorization": f"Bearer {mint_token(SECRET, 'tool', '510000', ['evaluator'])}"}
        page = await c.get(f"/reports?unit=510000&from={y}-12-01&to={y}-12-31&as_of={y}-12-31T12:00:00%2B08:00",
                           headers=auth)
        assert page.status_code == 200, page.text
        note = re.search(r"<p class=note id=calendar-note>(.*?)</p>", page.text)
        assert note and f"{y + 1} 年" in note.group(1) and "周一至周五" in note.group(1)
        assert "GATEWAY_HOLIDAYS_FILE" in note.group(1)


async def test_identity_platform_down_or_a_forged_callback_is_said_in_words(db: Database) -> None:
    await load_units(db.sessionmaker)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    async with await client(db, oidc_issuer=f"http://127.0.0.1:{port}", oidc_client_id="gw") as c:
        down = await c.get("/login")
        assert down.status_code == 502 and "统一身份认证平台暂时无法访问" in down.text
        forged = await c.get("/auth/callback?code=stolen&state=made-up")
        assert forged.status_code in (401, 502) and ("重新登录" in forged.text or "无法访问" in forged.text)
        assert (await c.get("/reports")).status_code == 303  # still not signed in


async def test_callback_with_a_state_it_never_issued_is_refused(db: Database, idp: str) -> None:
    await load_units(db.sessionmaker)
    async with await client(db, oidc_issuer=idp, oidc_client_id="gw", oidc_client_secret="s") as c:
        started = await c.get("/login")
        assert started.status_code == 302 and "code_challenge_method=S256" in started.headers["location"]
        forged = await c.get("/auth/callback?code=stolen&state=made-up")
        assert forged.status_code == 401 and "重新登录" in forged.text
        assert (await c.get("/reports")).status_code == 303
