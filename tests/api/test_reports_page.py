"""The evaluators' page in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by
Selenium against the gateway served on loopback — load, pick, see the table and chart, download."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from gateway.api.app import create_app
from gateway.core.auth import mint_token
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.ingest.store import ingest_raw
from tests.conftest import Database
from tests.factories import event, load_units, record

SECRET = "page-test-secret-long-enough-for-hs256"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian chromium and chromium-driver not installed")


def serve(settings: Settings) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def browser(download_dir: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                              "download.prompt_for_download": False})
    return webdriver.Chrome(service=Service(DRIVER or ""), options=options)


async def seed(db: Database) -> None:
    await load_units(db.sessionmaker)
    on_time = [event("a1", "ACCEPTED", "2024-03-04T09:00:00+08:00")]
    late = [event("b1", "ACCEPTED", "2024-03-20T09:00:00+08:00")]
    async with transaction(db.sessionmaker) as session:
        await ingest_raw(session, [
            record("PG-1", handling_unit="510802001", events=on_time),
            record("PG-2", handling_unit="510811001", events=late),
            record("PG-3", handling_unit="510104001", events=on_time),
        ])


async def test_evaluator_picks_sees_and_downloads(db: Database, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    await seed(db)
    settings = Settings(database_url=db.url, jwt_secret=SECRET, dispatcher=False)
    token = mint_token(SECRET, "eval", "510000", ["evaluator"])
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    servers = serve(settings)
    base = next(servers)
    driver = browser(downloads)
    driver.implicitly_wait(15)  # a form post renders a new page: find_element waits for it
    try:
        driver.get(f"{base}/reports")
        assert "KPI report" in driver.title or "KPI" in driver.page_source
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "unit").send_keys("510000")
        Select(driver.find_element(By.ID, "level")).select_by_value("4")
        for field, value in (("from", "2024-03-01"), ("to", "2024-03-31")):
            element = driver.find_element(By.ID, field)
            driver.execute_script("arguments[0].value = arguments[1]", element, value)
        driver.find_element(By.ID, "show").click()

        table = driver.find_element(By.ID, "report")
        text = table.text
        assert "利州区市场监督管理局" in text and "昭化区市场监督管理局" in text and "锦江区市场监督管理局" in text
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == 4  # the three counties and the total
        assert rows[-1].find_elements(By.TAG_NAME, "td")[1].text == "3"
        assert len(driver.find_elements(By.CSS_SELECTOR, "#scores rect")) == 3

        driver.find_element(By.ID, "download-csv").click()
        deadline = time.monotonic() + 15
        while not list(downloads.glob("*.csv")) and time.monotonic() < deadline:
            time.sleep(0.1)
        files = list(downloads.glob("*.csv"))
        assert files, "no CSV was downloaded"
        assert "510802" in files[0].read_text(encoding="utf-8-sig")

        # A unit outside the evaluator's jurisdiction is refused on the page.
        driver.get(f"{base}/reports")
        driver.find_element(By.ID, "token").send_keys(mint_token(SECRET, "eval", "510800", ["evaluator"]))
        driver.find_element(By.ID, "unit").send_keys("510100")
        driver.find_element(By.ID, "show").click()
        assert "Forbidden" in driver.find_element(By.ID, "error").text
    finally:
        driver.quit()
        next(servers, None)
