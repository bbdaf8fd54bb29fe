"""Each API's /docs (Swagger UI) and /redoc (ReDoc) render in real Chromium from the API's own
assets: the page shows the API's operations, and every resource the browser loaded, and every
script and stylesheet on the page, came from the API's own address (no CDN). ReDoc's sidebar
asks for its vendor's logo from a CDN: the pages' Content-Security-Policy refuses it, and the
browser reports that refusal (a ``securitypolicyviolation`` event), so it never left."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.stack import PortalStack

APIS = ("ingest", "link", "access")

_LOADED = """
return [
  ...performance.getEntriesByType('resource').map(e => e.name),
  ...[...document.querySelectorAll('script[src]')].map(e => e.src),
  ...[...document.querySelectorAll('link[href]')].map(e => e.href),
]"""


_RECORD_REFUSALS = """
window.__refused = [];
document.addEventListener('securitypolicyviolation', e => window.__refused.push(e.blockedURI));
"""


@pytest.fixture
def refusals(driver: webdriver.Chrome) -> Iterator[None]:
    """Each page this test opens records what its policy refused to load."""
    added = driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": _RECORD_REFUSALS}
    )
    yield
    driver.execute_cdp_cmd(
        "Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]}
    )


def fetched_from_elsewhere(driver: webdriver.Chrome, base: str) -> list[str]:
    """What the page asked another origin for and the browser did not refuse."""
    urls: list[str] = driver.execute_script(_LOADED)
    assert urls, "the page loaded nothing"
    refused: list[str] = driver.execute_script("return window.__refused")
    return [u for u in urls if not u.startswith(base + "/") and u not in refused]


@pytest.mark.parametrize("api", APIS)
def test_swagger_ui_renders_the_apis_operations_from_its_own_assets(
    stack: PortalStack, driver: webdriver.Chrome, refusals: None, api: str
) -> None:
    base = stack.url(api)
    driver.get(f"{base}/docs")
    WebDriverWait(driver, 60).until(
        lambda d: (
            d.execute_script("return document.querySelectorAll('.swagger-ui .opblock').length") > 0
        )
    )
    title = driver.execute_script(
        "return document.querySelector('.swagger-ui .info .title').textContent"
    )
    assert title.startswith(f"fjo {api}")
    assert fetched_from_elsewhere(driver, base) == []
    assert f"{base}/docs/assets/swagger-ui-bundle.js" in driver.execute_script(_LOADED)


@pytest.mark.parametrize("api", APIS)
def test_redoc_renders_the_apis_operations_from_its_own_assets(
    stack: PortalStack, driver: webdriver.Chrome, refusals: None, api: str
) -> None:
    base = stack.url(api)
    driver.get(f"{base}/redoc")
    WebDriverWait(driver, 60).until(
        lambda d: (
            d.execute_script(
                "return document.querySelectorAll('[data-section-id^=\"operation/\"]').length"
            )
            > 0
        )
    )
    heading = driver.execute_script("return document.querySelector('h1').textContent")
    assert heading.startswith(f"fjo {api}")
    assert fetched_from_elsewhere(driver, base) == []
    assert f"{base}/docs/assets/redoc.standalone.js" in driver.execute_script(_LOADED)
