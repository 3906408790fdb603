"""The web page, the index page and /docs in headless Chromium: type two messages, see two labelled
results; pick tickers, a period and dates, see the index drawn and the API's numbers; keep a
screenshot of each; each page runs under its Content Security Policy without a violation.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). Without them the test is
skipped on a developer's machine but fails in CI, where it must run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import EMOTIONS_PRICES
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


# Pixels of a colour on a chart's canvas: the series drawn, not only the axes and grid.
PAINTED = """
const [canvas, r, g, b] = arguments;
const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
let n = 0;
for (let i = 0; i < pixels.length; i += 4) {
  const near = Math.abs(pixels[i] - r) < 40 && Math.abs(pixels[i + 1] - g) < 40 && Math.abs(pixels[i + 2] - b) < 40;
  if (near && pixels[i + 3] > 200) n++;
}
return n;
"""
BULL, ADJ, PRICE = (31, 119, 180), (148, 103, 189), (44, 160, 44)  # the charts' colours (index-charts.js)


def shown(text: str, value) -> bool:
    """A number as the page shows it (3 decimals, or thousands with commas; a dash for null) against the API's."""
    if value is None:
        return text == "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return text == f"{value:,}"
    return abs(float(text) - value) <= 0.0005 + 1e-12


def test_index_page_draws_the_index_and_shows_the_apis_numbers(browser, small_model_dir, emotions_scored):
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    with running_server(small_model_dir, "--index", str(emotions_scored), "--prices", str(EMOTIONS_PRICES)) as url:
        browser.get(url + "/index")
        wait = WebDriverWait(browser, 60)
        charts = browser.find_element(By.ID, "charts")
        wait.until(lambda d: charts.get_attribute("data-query"))  # the first view: the ticker with most messages
        assert [b.get_attribute("data-ticker") for b in charts.find_elements(By.CSS_SELECTOR, "article.ticker")] == [
            "TSLA"
        ]

        tickers = Select(browser.find_element(By.ID, "tickers"))
        tickers.deselect_all()
        tickers.select_by_value("TSLA")
        tickers.select_by_value("AAPL")
        Select(browser.find_element(By.ID, "freq")).select_by_value("1W")
        for name, day in (("start", "2020-03-01"), ("end", "2020-10-31")):  # as a date picker sets them
            browser.execute_script("arguments[0].value = arguments[1];", browser.find_element(By.ID, name), day)
        browser.find_element(By.ID, "show").click()
        query = "ticker=TSLA%2CAAPL&freq=1W&start=2020-03-01&end=2020-10-31"
        wait.until(lambda d: charts.get_attribute("data-query") == query)
        assert browser.current_url == f"{url}/index?{query}"  # the view can be linked
        api = httpx.get(f"{url}/v1/index?{query}", timeout=60).json()

        blocks = charts.find_elements(By.CSS_SELECTOR, "article.ticker")
        assert [b.get_attribute("data-ticker") for b in blocks] == ["TSLA", "AAPL"]
        for block in blocks:
            ticker = block.get_attribute("data-ticker")
            rows = [r for r in api["rows"] if r["ticker"] == ticker]
            closes = [p["close"] for p in api["prices"] if p["ticker"] == ticker]
            assert len(rows) == 35 and len(closes) > 150
            # The charts hold the API's numbers, and are drawn.
            data = browser.execute_script("return arguments[0].charts.share.data;", block)
            assert data[3] == [r["share_bull"] for r in rows]
            assert [data[1], data[2]] == [[r["ci_lo"] for r in rows], [r["ci_hi"] for r in rows]]
            assert data[6] == [r["share_bull_adj"] for r in rows] and data[4] == [r["adj_lo"] for r in rows]
            assert browser.execute_script("return arguments[0].charts.volume.data[1];", block) == [
                r["n_msgs"] for r in rows
            ]
            assert browser.execute_script("return arguments[0].charts.close.data[1];", block) == closes
            for chart, colour in (("share", BULL), ("share", ADJ), ("close", PRICE)):
                canvas = browser.execute_script(f"return arguments[0].charts.{chart}.ctx.canvas;", block)
                assert browser.execute_script(PAINTED, canvas, *colour) > 200, (ticker, chart, colour)
            # The numbers shown are the API's: every cell of the table, and the latest period's line.
            lines = block.find_elements(By.CSS_SELECTOR, "table.numbers tbody tr")
            assert len(lines) == len(rows)
            for line, row in zip(lines, rows):
                period = line.find_element(By.CSS_SELECTOR, "td.period").get_attribute("textContent")
                assert period == row["session_date"]
                cells = line.find_elements(By.CSS_SELECTOR, "td.value")
                assert {c.get_attribute("data-column") for c in cells} >= {
                    "n_msgs",
                    "share_bull",
                    "ci_lo",
                    "share_bull_adj",
                }
                for cell in cells:
                    column, text = cell.get_attribute("data-column"), cell.get_attribute("textContent")
                    assert shown(text, row[column]), (ticker, row["session_date"], column, text, row[column])
            last = [r for r in rows if r["n_msgs"] > 0][-1]
            latest = block.find_element(By.CSS_SELECTOR, ".latest")
            assert last["session_date"] in latest.text
            for value in latest.find_elements(By.CSS_SELECTOR, ".value"):
                assert shown(value.text, last[value.get_attribute("data-column")])

        loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert f"{url}/static/uPlot.iife.min.js" in loaded and all(n.startswith(url + "/") for n in loaded)  # no CDN
        assert_the_policy_holds_and_is_enforced(browser)
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "index_page.png"))
        assert (ARTIFACTS / "index_page.png").stat().st_size > 10_000
