"""A person's journey through the Airflow UI, in headless Chromium (Debian's ``chromium`` and
``chromedriver``, driven by Selenium; no browser is downloaded), done through the UI itself:

open the trigger form and press Trigger with its defaults; watch the run reach the approval; follow
the Matcher page's "answer it" to the Required Action and approve it there; see the night promoted
with its approver on the Matcher page and in the run's "Validation report" tab; compare two
versions; start a rollback from a version's page and land on its run. Every link on the Matcher's
pages is followed inside Airflow's frame. The REST API only reads states while the test waits.

The deployment (``conftest.airflow_server``) is ``make up``'s, with its own run defaults: a short
training and a gate whose pass is arranged (production is a model every candidate beats), so the
approval a person is asked for is arranged, not hoped of a tiny training run.

Each step is photographed in Airflow's light and dark modes (``test-artifacts/browser/``); the
page's timings (load, first and later search) go to ``test-artifacts/browser/timings.json``, which
``benchmarks/ui.py`` records in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import json
import time
from urllib.parse import unquote, urlsplit

import pytest
import requests

from tests.e2e.conftest import ARTIFACTS
from tests.helpers import BEATEN_VERSION

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DAG = "matcher_retraining"
GROUPS = ["ingest", "parse", "train", "validate", "approve", "promote", "refresh_embeddings"]
DARK_BACKGROUND = "rgb(15, 17, 23)"  # --bg of the Matcher pages in dark mode (matcher.css)
LIGHT_BACKGROUND = "rgb(255, 255, 255)"


def wait_for_text(driver, texts: list[str], timeout_s: float = 90) -> str:
    """The page's visible text once every one of ``texts`` shows in it."""
    deadline = time.monotonic() + timeout_s
    body = ""
    while time.monotonic() < deadline:
        try:
            body = driver.find_element("tag name", "body").text
        except Exception:  # noqa: BLE001 - the page is being replaced
            body = ""
        if all(text in body for text in texts):
            return body
        time.sleep(0.5)
    raise AssertionError(
        f"{[t for t in texts if t not in body]} not on {driver.current_url}; page text:\n{body[:3000]}"
    )


def log_in(driver, server) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{server.url}/")
    WebDriverWait(driver, 90).until(expected_conditions.presence_of_element_located((By.NAME, "username")))
    driver.find_element(By.NAME, "username").send_keys(server.username)
    driver.find_element(By.NAME, "password").send_keys(server.password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 90).until(lambda d: "login" not in d.current_url)


def click_button(driver, text: str, within: str = "body", timeout_s: float = 60) -> None:
    """Click the visible button whose text is ``text`` (inside the ``within`` CSS selector)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for button in driver.find_elements("css selector", f"{within} button"):
            if button.text.strip() == text and button.is_displayed() and button.is_enabled():
                button.click()
                return
        time.sleep(0.5)
    raise AssertionError(f"no enabled button {text!r} in {within} on {driver.current_url}")


def theme(driver, mode: str) -> None:
    """Switch Airflow's colour mode the way a person does: User > Appearance > Dark Mode / Light Mode."""
    driver.switch_to.default_content()
    if mode in driver.find_element("tag name", "html").get_attribute("class").split():
        return
    driver.find_element("css selector", "button[aria-label=User]").click()
    label = "Dark Mode" if mode == "dark" else "Light Mode"
    deadline = time.monotonic() + 20
    opened = False
    while time.monotonic() < deadline:
        if not opened:  # the modes are in the Appearance submenu
            appearance = [e for e in driver.find_elements("css selector", "[role=menuitem]") if e.text == "Appearance"]
            if appearance:
                appearance[0].click()
                opened = True
        items = [e for e in driver.find_elements("css selector", "[role^=menuitem]") if e.text.strip() == label]
        if items:
            items[0].click()
            break
        time.sleep(0.3)
    else:
        menu = [e.text for e in driver.find_elements("css selector", "[role=menu], [role=menuitem], [data-part=item]")]
        raise AssertionError(f"no {label!r} in Airflow's User menu: {menu}")
    deadline = time.monotonic() + 20
    while mode not in driver.find_element("tag name", "html").get_attribute("class").split():
        assert time.monotonic() < deadline, f"Airflow did not switch to {mode} mode"
        time.sleep(0.2)


def in_matcher_frame(driver, timeout_s: float = 60) -> None:
    """Switch into the Matcher's iframe (the nav page or a Dag Run tab) once it has loaded."""
    driver.switch_to.default_content()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        frames = driver.find_elements("css selector", "iframe")
        if frames:
            driver.switch_to.frame(frames[0])
            if driver.execute_script("return document.readyState") == "complete" and driver.find_elements(
                "css selector", "nav[aria-label=Matcher]"
            ):
                return
            driver.switch_to.default_content()
        time.sleep(0.5)
    raise AssertionError(f"the Matcher's frame did not load on {driver.current_url}")


def frame_background(driver) -> str:
    in_matcher_frame(driver)
    colour = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    driver.switch_to.default_content()
    return colour


def shots(driver, name: str, framed: bool = False) -> None:
    """``<name>-light.png`` and ``<name>-dark.png``; a page in the Matcher's frame follows the theme."""
    for mode in ("light", "dark"):
        theme(driver, mode)
        if framed:
            wanted = DARK_BACKGROUND if mode == "dark" else LIGHT_BACKGROUND
            deadline = time.monotonic() + 10
            while (colour := frame_background(driver)) != wanted:
                assert time.monotonic() < deadline, f"{name}: the Matcher page is {colour} in {mode} mode"
                time.sleep(0.3)
        time.sleep(0.5)
        driver.save_screenshot(str(ARTIFACTS / f"{name}-{mode}.png"))
    theme(driver, "light")


def new_run(server, before: set[str], timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = server.api("GET", f"/dags/{DAG}/dagRuns").json()["dag_runs"]
        fresh = [run["dag_run_id"] for run in runs if run["dag_run_id"] not in before]
        if fresh:
            return fresh[0]
        time.sleep(1)
    raise AssertionError("pressing Trigger started no run")


def task_of(server, run_id: str, task_id: str = "approve") -> dict:
    return server.api("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}").json()


def wait_until(condition, what: str, timeout_s: float = 1200, server=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(2)
    raise AssertionError(
        f"{what} did not happen in {timeout_s:.0f} s" + (f"; log: {server.log_path}" if server else "")
    )


def follow_links(driver, server, page: str, seen: set[str]) -> int:
    """Every link on the Matcher page ``page`` (a path under /matcher/): Matcher links are loaded in
    the frame and must render (200, not a "Not found" page); links to Airflow's views are clicked
    and must move Airflow's window to that view. Returns how many were followed."""
    followed = 0
    driver.get(f"{server.url}/plugin/matcher/matcher/{page}")
    in_matcher_frame(driver)
    links = driver.execute_script(
        "return [...document.querySelectorAll('a[href]')].map(a => [a.href, a.hasAttribute('data-airflow')])"
    )
    for href, airflow_view in links:
        if href in seen:
            continue
        seen.add(href)
        followed += 1
        if not airflow_view:  # fetched with the browser's own session (the page's CSP allows it no fetch)
            cookies = {cookie["name"]: cookie["value"] for cookie in driver.get_cookies()}
            response = requests.get(href, cookies=cookies, timeout=300, allow_redirects=False)
            assert response.status_code == 200 and "<h1>Not found</h1>" not in response.text, (
                page,
                href,
                response.status_code,
                response.text[:500],
            )
            continue
        driver.get(f"{server.url}/plugin/matcher/matcher/{page}")
        in_matcher_frame(driver)
        target = [a for a in driver.find_elements("css selector", "a[data-airflow]") if a.get_property("href") == href]
        target[0].click()
        driver.switch_to.default_content()
        wanted = unquote(urlsplit(href).path)
        wait_until(
            lambda wanted=wanted: unquote(urlsplit(driver.current_url).path) == wanted, f"Airflow showing {wanted}", 30
        )
        body = wait_for_text(driver, ["Dags"])
        assert "Page Not Found" not in body and "404" not in body.split("\n")[:5], (href, body[:500])
    return followed


def next_page(driver, press, texts: list[str], timeout_s: float = 180) -> str:
    """``press()`` (in the Matcher's frame), then the text of the page it loads once ``texts`` show on it:
    never the page it was pressed on, which may show the same texts (an earlier search's results)."""
    driver.execute_script("window.matcherPressedHere = true")
    press()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            fresh = driver.execute_script("return !window.matcherPressedHere && document.readyState === 'complete'")
            if fresh:
                body = driver.find_element("tag name", "body").text
                if all(text in body for text in texts):
                    return body
        except Exception:  # noqa: BLE001 - the frame is between two documents
            pass
        time.sleep(0.1)
    raise AssertionError(f"{texts} did not show after pressing on {driver.current_url}")


def search(driver, query: str) -> float:
    """Post a job description from the Matcher page; seconds until its results show."""
    in_matcher_frame(driver)
    box = driver.find_element("css selector", "textarea[name=q]")
    box.clear()
    box.send_keys(query)
    started = time.monotonic()
    next_page(driver, driver.find_element("css selector", "form button[type=submit]").click, ["candidate (source key)"])
    return time.monotonic() - started


def test_the_journey_through_the_ui_trigger_approve_inspect_compare_roll_back(airflow_server, browser):
    server, driver = airflow_server, browser
    timings = {}
    log_in(driver, server)

    # 1. The trigger form, with its defaults: press Trigger (the dialog unpauses the DAG).
    before = {run["dag_run_id"] for run in server.api("GET", f"/dags/{DAG}/dagRuns").json()["dag_runs"]}
    driver.get(f"{server.url}/dags/{DAG}")
    wait_for_text(driver, [DAG, *GROUPS])
    for mode in ("dark", "light"):  # the dialog covers the User menu: the theme is set before it opens
        theme(driver, mode)
        driver.find_element("css selector", "[data-testid=trigger-dag-button]").click()
        form = wait_for_text(driver, ["Trigger Dag - " + DAG, "Training", "Gate", "Data"])
        assert "Unpause " + DAG + " on trigger" in form
        click_button(driver, "Training", within="[role=dialog]")  # its params: titles, defaults, limits
        wait_for_text(driver, ["Epochs", "Learning rate"])
        time.sleep(1)
        driver.save_screenshot(str(ARTIFACTS / f"01-trigger-form-{mode}.png"))
        if mode == "dark":  # the page again, without the dialog, for the light one
            driver.get(f"{server.url}/dags/{DAG}")
            wait_for_text(driver, [DAG, *GROUPS])
    click_button(driver, "Trigger", within="[role=dialog]")
    run_id = new_run(server, before)
    assert server.api("GET", f"/dags/{DAG}/dagRuns/{run_id}").json()["conf"]["require_approval"] is True

    # 2. Watch it reach the approval.
    wait_until(lambda: task_of(server, run_id)["state"] == "awaiting_input", "the approval request", server=server)
    driver.get(f"{server.url}/dags/{DAG}/runs/{run_id}")
    wait_for_text(driver, [run_id, *GROUPS, "Required Actions"])
    shots(driver, "02-run-awaiting-approval")

    # 3. The Matcher page says so, with the deadline, and "answer it" opens the Required Action.
    started = time.monotonic()
    driver.get(f"{server.url}/plugin/matcher")
    in_matcher_frame(driver)
    page = wait_for_text(driver, ["Gate decisions", "awaiting approval", "answer it", "reviewers: admin"])
    timings["page load inside Airflow (s)"] = round(time.monotonic() - started, 2)
    assert "night awaiting approval" in page and "(until " in page
    driver.switch_to.default_content()
    shots(driver, "03-matcher-awaiting-approval", framed=True)
    in_matcher_frame(driver)
    driver.find_element("link text", "answer it").click()
    driver.switch_to.default_content()
    wait_until(lambda: driver.current_url.endswith("/tasks/approve/required_actions"), "the Required Action", 30)
    request = wait_for_text(driver, ["The gate passed candidate", "Who may answer: admin.", "Approve", "Reject"])
    assert "With no answer by" in request
    shots(driver, "04-required-action")

    # 4. Approve it there. Answered within a second of the pause, Airflow 3.3's LocalExecutor may kill
    # the resumed task and ask again (tests/e2e/test_approval.py): a person answers again, so does this.
    answered, answered_at, deadline = 0, 0.0, time.monotonic() + 900
    while True:
        assert time.monotonic() < deadline, f"the approved run did not finish; log: {server.log_path}"
        run = server.api("GET", f"/dags/{DAG}/dagRuns/{run_id}").json()
        if run["state"] in ("success", "failed"):
            break
        approve = task_of(server, run_id)
        still_asking = approve["try_number"] == answered and time.monotonic() - answered_at > 60
        if approve["state"] == "awaiting_input" and (approve["try_number"] > answered or still_asking):
            driver.get(
                f"{server.url}/dags/{DAG}/runs/{run_id.replace(':', '%3A').replace('+', '%2B')}"
                "/tasks/approve/required_actions"
            )
            wait_for_text(driver, ["Approve", "Reject"])
            driver.find_element("css selector", "[data-testid=hitl-option-Approve]").click()
            answered, answered_at = approve["try_number"], time.monotonic()
        time.sleep(3)
    assert run["state"] == "success", server.log_path
    assert task_of(server, run_id, "promote")["state"] == "success"

    # 5. Promoted, with its approver, on the Matcher page; a search at once (the new model loads as
    # the page opens), then a later one.
    driver.get(f"{server.url}/plugin/matcher")
    in_matcher_frame(driver)
    page = wait_for_text(driver, ["promoted: in production", "approved by admin"])
    version = page.split("In production: ", 1)[1].split()[0]
    assert version.startswith("v") and version != BEATEN_VERSION
    timings["first search after a new model (s)"] = round(search(driver, "Accountant for month-end close."), 2)
    timings["later search (s)"] = round(search(driver, "Software engineer building data pipelines."), 2)
    in_matcher_frame(driver)
    results = driver.find_element("tag name", "body").text
    assert "Production (" + version + ")" in results and "candidate (source key)" in results
    driver.switch_to.default_content()
    shots(driver, "05-matcher-promoted-and-search", framed=True)
    driver.get(f"{server.url}/dags/{DAG}/runs/{run_id}")
    wait_for_text(driver, ["Validation report"])
    tab = [e for e in driver.find_elements("css selector", "a, button") if e.text.strip() == "Validation report"]
    tab[0].click()
    in_matcher_frame(driver)
    report = wait_for_text(driver, [f"Validation report: {version}", "Approval", "Approved by admin"])
    assert "promoted: in production" in report.split("What became of it:", 1)[1][:80]
    driver.switch_to.default_content()
    shots(driver, "06-run-report-tab", framed=True)

    # 6. Compare two versions: production and the one it replaced.
    driver.get(f"{server.url}/plugin/matcher")
    in_matcher_frame(driver)
    driver.find_element("link text", "Compare versions").click()
    wait_for_text(driver, ["Compare two versions"])
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("css selector", "select[name=a]")).select_by_value(BEATEN_VERSION)
    Select(driver.find_element("css selector", "select[name=b]")).select_by_value(version)
    compared = next_page(
        driver,
        lambda: click_button(driver, "Compare"),
        ["change (interval)", "Bias audits", f"A: {BEATEN_VERSION}"],
        300,
    )
    assert f"B: {version}" in compared
    assert "better beyond doubt" in compared  # the arranged production: every candidate beats it
    driver.find_element("css selector", "textarea[name=q]").send_keys("Chef for a hotel kitchen.")
    ranked = next_page(driver, lambda: click_button(driver, "Rank with both"), ["move in B"], 120)
    assert "same" in ranked or "up " in ranked or "down " in ranked or "new" in ranked
    driver.switch_to.default_content()
    shots(driver, "08-compare", framed=True)

    # 7. Every link on every Matcher page lands, inside Airflow's frame.
    seen: set[str] = set()
    pages = ["", f"version?v={version}", f"version?v={BEATEN_VERSION}", f"compare?a={BEATEN_VERSION}&b={version}"]
    driver.get(f"{server.url}/plugin/matcher")
    in_matcher_frame(driver)
    report_link = driver.find_element("link text", "report").get_attribute("href")
    pages.append(report_link.split("/matcher/", 1)[1])
    pages.append(f"card?v={version}")
    followed = sum(follow_links(driver, server, page, seen) for page in pages)
    assert followed >= 12 and any("/dags/" in href for href in seen), (followed, sorted(seen))

    # 8. Roll back from a version's page: confirm, and land on the rollback's run in Airflow.
    driver.get(f"{server.url}/plugin/matcher/matcher/version?v={BEATEN_VERSION}")
    in_matcher_frame(driver)
    wait_for_text(driver, [f"Version {BEATEN_VERSION}", "Roll back to this version"])
    click_button(driver, "Roll back to this version…")
    wait_for_text(driver, [f"Roll back to {BEATEN_VERSION}?", f"Production is now {version}"])
    driver.switch_to.default_content()
    shots(driver, "09-rollback-confirmation", framed=True)
    in_matcher_frame(driver)
    click_button(driver, "Confirm: start the rollback")
    started = wait_for_text(driver, [f"Rollback to {BEATEN_VERSION} started", "matcher_rollback DAG is paused"])
    rollback_run = started.split("Run ", 1)[1].split(" of matcher_rollback")[0]
    driver.switch_to.default_content()
    shots(driver, "10-rollback-started", framed=True)
    in_matcher_frame(driver)
    driver.find_element("link text", rollback_run).click()
    driver.switch_to.default_content()
    wait_until(lambda: "/dags/matcher_rollback/runs/" in driver.current_url, "the rollback's run page", 30)
    wait_for_text(driver, [rollback_run, "rollback_and_refresh"])
    shots(driver, "11-rollback-run")
    conf = server.api("GET", f"/dags/matcher_rollback/dagRuns/{rollback_run}").json()["conf"]
    assert conf == {"version": BEATEN_VERSION}
    server.api("PATCH", "/dags/matcher_rollback", json={"is_paused": False})
    done = wait_until(
        lambda: (
            server.api("GET", f"/dags/matcher_rollback/dagRuns/{rollback_run}").json()["state"] in ("success", "failed")
            and server.api("GET", f"/dags/matcher_rollback/dagRuns/{rollback_run}").json()
        ),
        "the rollback",
        600,
        server,
    )
    assert done["state"] == "success", server.log_path
    driver.get(f"{server.url}/plugin/matcher")
    in_matcher_frame(driver)
    wait_for_text(driver, [f"In production: {BEATEN_VERSION}", "rolled back"])
    driver.switch_to.default_content()
    shots(driver, "12-matcher-rolled-back", framed=True)

    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=1))
