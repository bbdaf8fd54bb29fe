"""Real Chromium (Debian's, through its chromedriver) driving the portal, with axe-core.

``scripts/browser.sh install`` (run by ``make pytest``) puts the browser there; a missing
browser is a failure here, never a skip. axe-core comes from ``scripts/assets.sh`` (npm, its
integrity checked): the one axe-selenium-python bundles predates the WCAG 2.1/2.2 rule tags.
``FJO_SCREENSHOTS=<dir>`` also saves a PNG of every
page checked and ``axe.json`` with each page's result (``make screenshots``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.browser.stack import PortalStack, portal_stack

WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
"""axe-core's rules for WCAG 2.0, 2.1 and 2.2 at levels A and AA."""

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]


def axe_source() -> str:
    """axe-core from the build step (scripts/assets.sh: npm, integrity checked), read once."""
    if not _AXE:
        out = subprocess.run(
            [str(REPO / "scripts" / "assets.sh"), "axe"], check=True, capture_output=True, text=True
        )
        _AXE.append(Path(out.stdout.strip().splitlines()[-1]).read_text())
    return _AXE[0]


_AXE: list[str] = []
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalStack]:
    with portal_stack(tmp_path_factory.mktemp("portal-stack")) as s:
        yield s


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def driver(downloads: Path) -> Iterator[webdriver.Chrome]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, f"run scripts/browser.sh install: missing {missing}"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--no-first-run",
        "--metrics-recording-only",
        "--disable-features=Translate,OptimizationHints,MediaRouter",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    chrome = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    chrome.implicitly_wait(0)
    chrome.set_script_timeout(180)  # axe on a loaded two-core machine
    chrome.set_page_load_timeout(180)
    try:
        yield chrome
    finally:
        chrome.quit()


class Pages:
    """Checks every page a journey reaches with axe (WCAG 2.2 AA: no serious or critical
    violations) and, with FJO_SCREENSHOTS, keeps its picture and result."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self.out = (
            Path(os.environ["FJO_SCREENSHOTS"]) if os.environ.get("FJO_SCREENSHOTS") else None
        )
        self.results: dict[str, Any] = {}

    def check(self, name: str) -> None:
        self.driver.execute_script(axe_source())
        result = self.driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "axe.run(document, arguments[0]).then(done, function (e) { done({error: String(e)}) })",
            {
                "runOnly": {"type": "tag", "values": list(WCAG_TAGS)},
                "resultTypes": ["violations"],
            },
        )
        assert "error" not in result, f"{name}: axe failed: {result.get('error')}"
        bad = [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
        self.results[name] = {
            "url": self.driver.current_url,
            "violations": [
                {"id": v["id"], "impact": v.get("impact"), "nodes": len(v["nodes"])}
                for v in result["violations"]
            ],
            "rules_passed": len(result["passes"]),
        }
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            height = self.driver.execute_script("return document.body.scrollHeight")
            self.driver.set_window_size(1280, min(max(int(height), 800), 4000))
            self.driver.save_screenshot(str(self.out / f"{name}.png"))
            self.driver.set_window_size(1280, 1000)
        assert not bad, f"{name}: axe found {[(v['id'], v['impact']) for v in bad]}"


@pytest.fixture(scope="session")
def pages(driver: webdriver.Chrome) -> Iterator[Pages]:
    p = Pages(driver)
    yield p
    if p.out is not None:
        (p.out / "axe.json").write_text(json.dumps(p.results, indent=2, sort_keys=True) + "\n")
