"""The web page and /docs in headless Chromium: type two messages, see two labelled results, keep a
screenshot; each page runs under its Content Security Policy without a violation.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). Without them the test is
skipped on a developer's machine but fails in CI, where it must run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from serve_helpers import running_server

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"  # git-ignored
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,760",
]
MESSAGES = ["$SPY breaking out to new highs, loading calls 🚀", "$SPY this is going to crash hard, buying puts"]


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing: .ci/run should have installed them")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP violations land there
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager never tries to download one.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def csp_violations(browser) -> list[str]:
    """Console messages since the last call that say the Content Security Policy blocked something."""
    return [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]


def assert_the_policy_holds_and_is_enforced(browser) -> None:
    """The page ran under its CSP without a single violation, and the CSP is really in force: an
    inline script put into the page now is blocked (and reported, so the check above could fail)."""
    assert csp_violations(browser) == []
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
        "document.body.appendChild(s);"
    )
    assert browser.execute_script("return window.injected") is None
    assert csp_violations(browser) != []


def test_page_scores_two_messages(browser, small_model_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    with running_server(small_model_dir) as url:
        browser.get(url + "/")
        assert browser.title == "stocksent"
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: d.find_element(By.ID, "model").text.startswith("model: small-"))
        box = browser.find_element(By.ID, "messages")
        # send_keys cannot type characters outside the BMP (the emoji): set the value as a paste would.
        browser.execute_script("arguments[0].value = arguments[1];", box, "\n".join(MESSAGES))
        browser.find_element(By.ID, "score").click()
        rows = wait.until(lambda d: (r := d.find_elements(By.CSS_SELECTOR, "#results tr.result")) and len(r) == 2 and r)
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "2 scored"))

        labels = [row.find_element(By.CSS_SELECTOR, ".label").text for row in rows]
        assert set(labels) <= {"bullish", "bearish"} and len(labels) == 2
        assert [row.find_element(By.CSS_SELECTOR, "td.message").text for row in rows] == MESSAGES
        for row in rows:  # the bar's width is the probability
            value = float(row.find_element(By.CSS_SELECTOR, ".value").text)
            style = row.find_element(By.CSS_SELECTOR, ".fill").get_attribute("style")
            width = float(style.split("width:")[1].split("%")[0])
            assert 0.0 <= value <= 1.0 and abs(width - value * 100) <= 0.11

        assert_the_policy_holds_and_is_enforced(browser)
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "serve_page.png"))
        assert (ARTIFACTS / "serve_page.png").stat().st_size > 10_000


def test_docs_render_swagger_ui_without_a_cdn(browser, small_model_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with running_server(small_model_dir) as url:
        browser.get(url + "/docs")
        wait = WebDriverWait(browser, 30)
        paths = wait.until(
            lambda d: (
                [e.text for e in d.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock .opblock-summary-path")] or None
            )
        )
        assert {"/v1/predict", "/v1/model", "/healthz"} <= {p.replace("\u200b", "") for p in paths}
        assert not browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .errors-wrapper")
        loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(name.startswith(url + "/") for name in loaded), loaded  # no CDN
        predict = browser.find_element(By.ID, "operations-scoring-predict_v1_predict_post")
        predict.find_element(By.CSS_SELECTOR, ".opblock-summary").click()  # open it: the example body shows
        wait.until(lambda d: "$SPY breaking out" in predict.text)

        assert_the_policy_holds_and_is_enforced(browser)
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "docs.png"))
        assert (ARTIFACTS / "docs.png").stat().st_size > 10_000
