"""A person's view, end to end: trigger the DAG through the REST API with params, wait for it, then
look at the run, its task groups and the Matcher page in headless Chromium (Debian's ``chromium``
and ``chromedriver``, driven by Selenium; no browser is downloaded). Screenshots are saved under
``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.helpers import ARRANGED_PROMOTION, PROJECT_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"
RUN_CONF = {"epochs": 2, "learning_rate": 5e-5, **ARRANGED_PROMOTION}
GROUPS = ["ingest", "parse", "train", "validate", "promote", "refresh_embeddings"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make browser-deps installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1100",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait_for_text(driver, texts: list[str], timeout_s: float = 90) -> str:
    """The page's visible text once every one of ``texts`` shows in it."""
    deadline = time.monotonic() + timeout_s
    body = ""
    while time.monotonic() < deadline:
        body = driver.find_element("tag name", "body").text
        if all(text in body for text in texts):
            return body
        time.sleep(1)
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


def test_trigger_through_the_api_then_watch_the_run_and_the_matcher_page(airflow_server, browser):
    server = airflow_server
    server.api("PATCH", "/dags/matcher_retraining", json={"is_paused": False})
    run = server.api("POST", "/dags/matcher_retraining/dagRuns", json={"logical_date": None, "conf": RUN_CONF}).json()
    assert run["conf"] == RUN_CONF
    finished = server.wait_for_run("matcher_retraining", run["dag_run_id"], timeout_s=1200)
    instances = server.api("GET", f"/dags/matcher_retraining/dagRuns/{run['dag_run_id']}/taskInstances").json()[
        "task_instances"
    ]
    assert finished["state"] == "success", {ti["task_id"]: ti["state"] for ti in instances}
    shard_names = sorted(ti["rendered_map_index"] for ti in instances if ti["task_id"] == "parse.parse_shard")
    assert shard_names == [
        f"shard {i}/5: files {20 * i - 19}-{min(20 * i, 83)}" for i in range(1, 6)
    ]  # 80 CVs + 3 broken

    log_in(browser, server)
    browser.get(f"{server.url}/dags/matcher_retraining/runs/{run['dag_run_id']}")
    wait_for_text(browser, ["matcher_retraining", *GROUPS])
    browser.save_screenshot(str(ARTIFACTS / "01-dag-run.png"))

    browser.get(f"{server.url}/matcher/")
    from include.matcher.foundations.storage import Storage

    production = Storage().get_json(server.locations.registry + "/production.json")
    page = wait_for_text(
        browser, ["Matcher", f"In production: {production['version']}", "Model versions", "Gate decisions"]
    )
    assert "(production)" in page and "promoted" in page.split("Gate decisions")[1]
    assert browser.find_elements("css selector", "svg circle"), "no metric chart"
    browser.save_screenshot(str(ARTIFACTS / "02-matcher-page.png"))

    # Each night's validation report is one click away: the HTML page with its charts.
    browser.find_element("link text", "report").click()
    wait_for_text(browser, ["Validation report", "PROMOTE", "TF-IDF + logistic regression"])
    assert browser.find_elements("css selector", "svg.confusion-matrix rect"), "no confusion matrix"
    browser.save_screenshot(str(ARTIFACTS / "03-validation-report.png"))
