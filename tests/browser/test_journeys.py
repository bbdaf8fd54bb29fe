"""Each persona's main journey through the portal in a real browser, sign-in to the end:
a researcher from application to a query, a job and a downloaded output, the data
controllers and the panel approving, two checkers releasing, a reviewer clearing the
possible-match queue. Every page on the way passes axe (no serious or critical WCAG 2.2 AA
violation)."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import httpx
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from contracts.topics import LINK_RESULTS
from services.runtime.bus.factory import make_bus
from tests.browser.conftest import Pages
from tests.browser.stack import PortalStack
from tests.unit.ingest.support import CANARY_SURNAME, ndjson_delivery

STORY: dict[str, Any] = {}


def find(driver: webdriver.Chrome, css: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, css)


def go(driver: webdriver.Chrome, css: str, key: str | None = None) -> None:
    """Click (or press ``key`` on the page) and wait until the next page has replaced this.

    A mark on this page's window is gone once another document has loaded in its place.
    Asking about an element of the old page instead (``staleness_of``) races Chromium's
    navigation, which answers some of those questions with an inspector error ("node does not
    belong to the document") rather than a stale reference: it failed a clean CI run."""
    driver.execute_script("window.fjoLeaving = true")
    if key is None:
        find(driver, css).click()
    else:
        find(driver, css).send_keys(key)
    WebDriverWait(driver, 60, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.fjoLeaving === undefined && document.readyState === 'complete'"
        )
    )


def text(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.TAG_NAME, "main").text


def sign_in(driver: webdriver.Chrome, stack: PortalStack, subject: str, then: str = "/") -> None:
    driver.delete_all_cookies()
    driver.get(f"{stack.url('portal')}{then}")
    # Not signed in: the portal sends the browser to the issuer's dev sign-in page.
    assert driver.current_url.startswith(stack.url("idp")), driver.current_url
    find(driver, f"#p-{subject}").click()
    find(driver, "#sign-in").click()
    # Back through the callback (code exchanged with the PKCE verifier) to the page asked for.
    WebDriverWait(driver, 60).until(lambda d: d.current_url.startswith(stack.url("portal")))
    assert f"({subject})" in find(driver, ".govuk-phase-banner").text


def sign_out(driver: webdriver.Chrome, stack: PortalStack) -> None:
    go(driver, "#sign-out")
    assert "You have signed out" in text(driver)
    driver.get(f"{stack.url('portal')}/projects")
    assert driver.current_url.startswith(stack.url("idp"))  # the session is gone


def test_the_researcher_applies_for_a_project(
    stack: PortalStack, driver: webdriver.Chrome, pages: Pages
) -> None:
    issuer = stack.issuer
    admin = issuer.mint("root", audience="fjo-access", roles=["admin"])
    for subject, name in (("alice", "Alice Morgan"), ("bob", "Bob Evans")):
        r = httpx.post(
            f"{stack.url('access')}/v1/researchers",
            json={"subject": subject, "display_name": name, "accredited_until": "2099-12-31"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert r.status_code == 201, r.text
    driver.delete_all_cookies()
    driver.get(stack.url("portal"))
    pages.check("home-signed-out")
    go(driver, "#start")
    pages.check("dev-sign-in")
    find(driver, "#p-alice").click()
    find(driver, "#sign-in").click()
    WebDriverWait(driver, 60).until(lambda d: d.current_url.startswith(stack.url("portal")))
    pages.check("home")
    driver.get(f"{stack.url('portal')}/projects")
    assert "31 December 2099" in text(driver)  # the accreditation and its expiry
    pages.check("researcher-projects")
    go(driver, "#apply")
    pages.check("researcher-apply")
    find(driver, "#title").send_keys("Newborns in care proceedings")
    find(driver, "#summary").send_keys("How often newborns enter care proceedings, by area.")
    for box in ("#dataset-case", "#dataset-child"):
        find(driver, box).click()
    for var in ("case-LAW_TYPE", "case-LA_CD_E", "child-WOB", "child-GNDR_CD", "child-LSOA_CD"):
        find(driver, f"#var-{var}").click()
    find(driver, "#window_start").send_keys("2015-01-01")
    find(driver, "#window_end").send_keys("2019-12-31")
    find(driver, "#legal_basis").send_keys("UK GDPR Article 6(1)(e) and 9(2)(j)")
    find(driver, "#dsa_reference").send_keys("DSA-FJO-2025-014")
    find(driver, "#members").send_keys("bob")
    go(driver, "#save")
    assert "saved as a draft" in text(driver)
    STORY["project"] = driver.current_url.split("?")[0]
    pages.check("researcher-project-draft")
    go(driver, "#submit-project")
    assert "submitted to the panel" in text(driver)
    assert "waiting" in find(driver, "#sign-offs").text
    sign_out(driver, stack)


def test_each_data_controller_signs_the_project_off(
    stack: PortalStack, driver: webdriver.Chrome, pages: Pages
) -> None:
    for n, subject in enumerate(("cerys", "catrin", "gareth")):
        sign_in(driver, stack, subject, "/sign-off")
        if n == 0:
            pages.check("controller-queue")
        go(driver, "#waiting a")
        if n == 0:
            pages.check("controller-project")
        go(driver, "#sign-off")
        assert "You have signed the project off" in text(driver)
    assert text(driver).count("signed by") == 3
    sign_out(driver, stack)


def test_the_panel_approves_with_conditions(
    stack: PortalStack, driver: webdriver.Chrome, pages: Pages
) -> None:
    sign_in(driver, stack, "carol", "/panel")
    pages.check("panel-queue")
    go(driver, "#waiting a")
    assert "LSOA_CD" in find(driver, "#variables").text  # variables against the purpose
    pages.check("panel-review")
    # Row-level download is egress the panel must permit explicitly: off unless ticked.
    assert not find(driver, "#egress-row-level-download").is_selected()
    find(driver, "#conditions").send_keys("Counts under 10 are reported as <10.")
    go(driver, "#approve")
    assert "The project is approved" in text(driver)
    sign_out(driver, stack)


JOB = """import pandas as pd
child = pd.read_parquet("/data/CHILD.parquet")
child[["GNDR_CD"]].to_csv("/output/children.csv", index=False)
print("children", len(child))
"""


def wait_for(driver: webdriver.Chrome, css: str, word: str, what: str) -> None:
    """Refresh the page (as a person would) until ``css`` says ``word``."""
    deadline = time.monotonic() + 90
    while word not in find(driver, css).text:
        assert time.monotonic() < deadline, f"{what}: {find(driver, css).text}"
        time.sleep(0.5)
        driver.refresh()


def downloaded(downloads: Path, pattern: str) -> Path:
    deadline = time.monotonic() + 20
    while True:
        files = [p for p in downloads.glob(pattern) if not p.name.endswith(".crdownload")]
        if files:
            return files[0]
        assert time.monotonic() < deadline, f"no download of {pattern}"
        time.sleep(0.2)


def test_the_researcher_gets_an_extract_and_works_in_the_workspace(
    stack: PortalStack, driver: webdriver.Chrome, pages: Pages, downloads: Path
) -> None:
    project = STORY["project"].removeprefix(stack.url("portal"))
    sign_in(driver, stack, "alice", project)
    assert "Counts under 10" in text(driver)  # the panel's conditions
    assert "Not permitted: the data stay in the workspace" in text(driver)  # no egress
    go(driver, "#activate")
    go(driver, "#request-extract")
    wait_for(driver, "#extract-state", "succeeded", "the extract was not built")
    assert "share unlinked" in find(driver, "#linkage-child").text
    assert "WOB" in find(driver, "#dictionary").text
    assert "CHILD.csv" in find(driver, "#files").text
    pages.check("researcher-extract")

    driver.get(f"{stack.url('portal')}{project}/workspace")
    assert "CHILD" in find(driver, "#tables").text
    pages.check("researcher-workspace")
    find(driver, "#dummy a").click()  # dummy data to take away: no real record behind it
    dummy = downloaded(downloads, "DUMMY_*.csv").read_text().splitlines()
    assert len(dummy) > 1 and "," in dummy[0], dummy[:2]  # a header and made-up rows
    # A query that reads a file is refused, recorded and shown with its reason.
    find(driver, "#sql").send_keys("SELECT * FROM read_text('/etc/hostname')")
    go(driver, "#run-query")
    assert "refused" in find(driver, "#query-state").text
    pages.check("researcher-query-refused")
    driver.get(f"{stack.url('portal')}{project}/workspace")
    find(driver, "#sql").send_keys("SELECT GNDR_CD, count(*) AS n FROM CHILD GROUP BY GNDR_CD")
    go(driver, "#run-query")
    assert "succeeded" in find(driver, "#query-state").text
    assert len(find(driver, "#preview tbody").find_elements(By.TAG_NAME, "tr")) == 2
    pages.check("researcher-query")
    driver.get(f"{stack.url('portal')}{project}/workspace")
    assert "file-access" in find(driver, "#queries").text  # the refusal, in the list
    find(driver, "#name").clear()
    find(driver, "#name").send_keys("children")
    find(driver, "#script").send_keys(JOB)
    find(driver, "#requirement-pandas").click()
    go(driver, "#submit-job")
    wait_for(driver, "#job-state", "succeeded", "the job did not succeed")
    assert "children" in find(driver, "#job-log").text
    pages.check("researcher-job")

    new_output = find(driver, "#job-outputs a").get_attribute("href")
    go(driver, "#job-outputs a")  # ask for the job's file to leave, as a table
    pages.check("researcher-output-new")
    find(driver, "#title").send_keys("Children by sex")
    find(driver, "#index").send_keys("GNDR_CD")
    go(driver, "#submit-output")
    assert "ACRO checked your output" in text(driver)
    assert "MinimumThresholdCheck 0 pass" in find(driver, "#checks").text  # ACRO, per check
    STORY["output"] = driver.current_url.split("?")[0].removeprefix(stack.url("portal"))
    pages.check("researcher-output")
    # A second output, so that the checkers' queue is longer than its page (the stack's
    # page size is 1) and pages on with its Next link.
    driver.get(str(new_output))
    find(driver, "#title").send_keys("Children by sex, a second table")
    find(driver, "#index").send_keys("GNDR_CD")
    go(driver, "#submit-output")
    assert "ACRO checked your output" in text(driver)
    sign_out(driver, stack)


def test_two_checkers_release_the_output(
    stack: PortalStack, driver: webdriver.Chrome, pages: Pages
) -> None:
    for n, subject in enumerate(("dave", "erin")):
        sign_in(driver, stack, subject, "/checking")
        assert find(driver, "#queue a").text == "Children by sex"  # the oldest first
        if n == 0:
            pages.check("checker-queue")
            go(driver, 'a[rel="next"]')  # the second output, on the next page
            assert "a second table" in find(driver, "#queue a").text
            assert not driver.find_elements(By.CSS_SELECTOR, 'a[rel="next"]')  # the last page
            driver.get(f"{stack.url('portal')}/checking")
        go(driver, "#queue a")
        assert "MinimumThresholdCheck" in find(driver, "#checks").text  # ACRO, per check
        if n == 0:
            pages.check("checker-output")
            find(driver, "#comment").send_keys("Fine: every cell is over the threshold.")
            go(driver, "#comment-output")
            assert "Your comment is recorded" in text(driver)
        go(driver, "#approve-output")
    assert "The output is released" in text(driver)
    sign_out(driver, stack)


def test_the_researcher_downloads_the_released_output(
    stack: PortalStack, driver: webdriver.Chrome, pages: Pages, downloads: Path
) -> None:
    sign_in(driver, stack, "alice", STORY["output"])
    assert "Fine: every cell is over the threshold." in text(driver)  # the checkers' comment
    assert "released" in find(driver, "#output-state").text
    pages.check("researcher-output-released")
    links = find(driver, "#output-files").find_elements(By.TAG_NAME, "a")
    table = next(a for a in links if a.text.endswith(".csv"))
    name = table.text
    table.click()
    with downloaded(downloads, name).open() as f:
        rows = list(csv.reader(f))
    assert len(rows) >= 3, rows  # the two sexes' counts, as ACRO computed them
    sign_out(driver, stack)


def test_anyone_reads_the_public_register_signed_out(
    stack: PortalStack, driver: webdriver.Chrome, pages: Pages
) -> None:
    driver.delete_all_cookies()
    driver.get(f"{stack.url('portal')}/")
    go(driver, "#footer-register")
    assert driver.current_url == f"{stack.url('portal')}/register"
    register = find(driver, "#register").text
    # The panel published it (the approval's default), with its purpose and legal basis.
    assert "Newborns in care proceedings" in register
    assert "How often newborns enter care proceedings, by area." in register
    assert "UK GDPR Article 6(1)(e) and 9(2)(j)" in register
    assert "released" in register and "by 2 output checkers" in register
    assert "You are not signed in" in find(driver, ".govuk-phase-banner").text
    pages.check("public-register")


def test_the_reviewer_clears_the_queue_with_the_keyboard(
    stack: PortalStack, driver: webdriver.Chrome, pages: Pages
) -> None:
    sign_in(driver, stack, "rita", "/review")
    assert "2 of 2 waiting" in text(driver)
    pages.check("reviewer-match")
    go(driver, "body", "s")  # skip the first, then come back to it
    assert "skipped" in text(driver)
    go(driver, "body", "a")
    assert "Match accepted" in text(driver)
    go(driver, "#queue-empty a")  # only the skipped one is left
    go(driver, "body", "r")
    assert "Match rejected" in text(driver)
    assert "The queue is clear" in text(driver)
    pages.check("reviewer-queue-clear")
    sign_out(driver, stack)


def test_the_operator_sees_the_status(
    stack: PortalStack, driver: webdriver.Chrome, pages: Pages
) -> None:
    # Something to see: a delivery with refused lines, and a record access cannot handle.
    delivery = ndjson_delivery(12, bad_every=4, start=9_400_000)
    token = stack.issuer.mint(
        "cymru-push", audience="fjo-ingest", roles=["partner"], source="cafcass-cymru"
    )
    r = httpx.post(
        f"{stack.url('ingest')}/v1/deliveries",
        params={"record_type": "child"},
        content=delivery.body,
        headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert r.status_code == 201 and r.json()["rejected"] == 3, r.text
    bus = make_bus("embedded", database_url=f"sqlite:///{stack.root / 'bus.db'}")
    producer = bus.producer()
    producer.publish(LINK_RESULTS.name, b"no type header", key=b"k")
    producer.close()
    bus.close()
    probe = f"{stack.url('access-worker')}/status"
    deadline = time.monotonic() + 60

    def settled() -> bool:  # dead-lettered (marker) and committed (no lag)
        status = httpx.get(probe, timeout=5).json()
        return bool(status["dead_letters"]["total"] == 1 and status["lag"]["total"] == 0)

    while not settled():
        assert time.monotonic() < deadline, "the access worker did not dead-letter the record"
        time.sleep(0.3)

    sign_in(driver, stack, "root", "/status")
    assert "entries verified" in find(driver, "#audit").text
    lag = find(driver, "#lag-access-worker").text
    assert LINK_RESULTS.name in lag and "pseudonymise.records.v1" in lag
    assert find(driver, "#worker-access-worker ~ p .lag-total").text == "0"
    # Read from the worker's own /status: a real count, not "not reported".
    assert find(driver, "#worker-access-worker ~ p .suppressed-total").text == "0"
    dead = find(driver, "#dead-access-worker").text
    assert f"from {LINK_RESULTS.name} 1" in dead
    assert "services.runtime.delivery.PoisonMessage 1" in dead
    assert "3 records refused at ingest" in find(driver, "#quarantine-total").text
    assert "cafcass-cymru child 1 3" in find(driver, "#quarantine-sources").text
    reasons = find(driver, "#quarantine-reasons").text
    assert reasons.count("cafcass-cymru child") == 3  # three kinds of error, one each
    assert CANARY_SURNAME not in text(driver)
    pages.check("operator-status")
    sign_out(driver, stack)
    pages.check("signed-out")
