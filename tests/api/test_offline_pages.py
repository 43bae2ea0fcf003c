"""GraphiQL, /docs and /redoc work with the network cut off: every asset comes from the gateway itself (served
from pinned PyPI wheels), and the working editor / documentation is found in the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from gateway.core.settings import Settings
from tests.browser import browser, needs_browser, requested_urls, wait_for
from tests.loopback import serve

SECRET = "offline-pages-secret-long-enough-for-hs256"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('offline') / 'gateway.db'}"
    with serve(Settings(database_url=url, jwt_secret=SECRET, dispatcher=False)) as served:
        yield served


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_pages_name_no_outside_host(path: str, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'g.db'}", jwt_secret=SECRET, dispatcher=False)
    with TestClient(create_app(settings)) as client:
        page = client.get(path)
        assert page.status_code == 200
        assert "http://" not in page.text and "https://" not in page.text
        graphiql = client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        assert graphiql.status_code == 200 and "https://" not in graphiql.text


def _only_loopback(base: str, urls: list[str]) -> None:
    outside = [u for u in urls if not (u.startswith(base) or u.startswith(("data:", "blob:", "about:")))]
    assert not outside, f"the page asked for outside resources: {outside}"


@needs_browser
def test_graphiql_offline(base: str) -> None:
    from selenium.webdriver.common.by import By

    driver = browser()
    try:
        driver.get(f"{base}/graphql")
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".graphiql-container .graphiql-editor"))
        # the editor is live: it fetched the schema through introspection and shows the docs explorer's button
        assert driver.find_elements(By.CSS_SELECTOR, ".CodeMirror")
        assert driver.execute_script("return typeof GraphiQL") == "function"
        _only_loopback(base, requested_urls(driver))
    finally:
        driver.quit()


@needs_browser
def test_swagger_and_redoc_offline(base: str) -> None:
    from selenium.webdriver.common.by import By

    driver = browser()
    try:
        driver.get(f"{base}/docs")
        operations = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"))
        assert any("/api/v1/kpi/report" in op.text for op in operations)
        _only_loopback(base, requested_urls(driver))

        driver.get(f"{base}/redoc")
        wait_for(lambda: "/api/v1/kpi/report" in driver.find_element(By.TAG_NAME, "body").text)
        assert driver.find_elements(By.CSS_SELECTOR, ".menu-content")
        # ReDoc's "API docs by Redocly" logo points outside: an image that fails offline, nothing the page needs
        _only_loopback(base, [u for u in requested_urls(driver) if "redoc.ly" not in u])
    finally:
        driver.quit()
