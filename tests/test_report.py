"""The HTML report: every section present and self-contained (parsed), and it renders in Chromium."""

from __future__ import annotations

import base64
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import DATA_PATH
from process_helpers import run_in_read_only
from stocksent.cli import main
from stocksent.evaluation.report import N_WORST, SECTIONS
from stocksent.tools.baseline import run_baseline

STOCKSENT = str(Path(sys.executable).with_name("stocksent"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class Page(HTMLParser):
    """Section ids, images, table rows per table class, external references, and the visible text."""

    def __init__(self):
        super().__init__()
        self.sections, self.images, self.external, self.text = [], [], [], []
        self.rows: dict[str, int] = {}
        self.table = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "table":
            self.table = attrs.get("class")
        if tag == "tr" and self.table:
            self.rows[self.table] = self.rows.get(self.table, 0) + 1
        if tag in ("script", "link", "iframe") or any(
            k in ("src", "href") and v and not v.startswith("data:") for k, v in attrs.items()
        ):
            self.external.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report(small_model_dir, tmp_path_factory) -> tuple[Path, Page]:
    base = tmp_path_factory.mktemp("report")
    run_baseline(str(DATA_PATH), base / "baseline", seed=3, max_examples=3000, grid_c=(1.0, 4.0), grid_min_df=(1,))
    out = base / "report.html"
    assert (
        main(["report", "--model", str(small_model_dir), "--baseline", str(base / "baseline"), "--out", str(out)]) == 0
    )
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    return out, page


def test_report_has_every_section(report):
    _, page = report
    assert page.sections == ["summary", *(sid for sid, _ in SECTIONS)]
    text = " ".join(page.text)
    for needed in (
        "LSTM",
        "TF-IDF + logistic regression",
        "majority class",
        "0.7170",
        "ECE =",
        "Learning curves",
        "Confusion matrix",
        "ROC",
        "blended (weights",
    ):
        assert needed in text
    assert "not comparable" not in text
    assert page.rows["metrics"] == 1 + 4  # header, model, baseline, majority, tutorial
    assert page.rows["errors"] == 1 + N_WORST


def test_report_is_self_contained(report):
    _, page = report
    assert len(page.images) == 4  # learning curves, confusion, reliability, ROC
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.external == []


def test_report_default_path_and_mismatched_baseline(small_model_dir, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(small_model_dir, model)
    other = tmp_path / "other"
    run_baseline(str(DATA_PATH), other, seed=4, max_examples=3000, grid_c=(1.0,), grid_min_df=(1,))
    assert main(["report", "--model", str(model), "--baseline", str(other)]) == 0
    assert f"report: {model / 'report.html'}" in capsys.readouterr().out
    assert "baseline not comparable" in (model / "report.html").read_text(encoding="utf-8")
    assert main(["report", "--model", str(model), "--baseline", str(tmp_path / "missing")]) == 2
    assert "no metrics.json" in capsys.readouterr().err


def test_report_renders_in_chromium(report):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Chromium missing: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    path, _ = report
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1200,900")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(path.as_uri())
        widths = driver.execute_script("return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 4 and all(w > 0 for w in widths)
        assert driver.execute_script("return document.querySelectorAll('section').length") == 1 + len(SECTIONS)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1200, min(height + 100, 12000))
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "report.png"))
    finally:
        driver.quit()


def test_a_read_only_model_directory_is_one_line(small_model_dir, tmp_path):
    """The default output, MODEL/report.html, in a folder no one may write: one line, exit 2; with
    --out elsewhere the same read-only model gives its report."""
    model = shutil.copytree(small_model_dir, tmp_path / "model")
    out = tmp_path / "elsewhere.html"
    refused, written = run_in_read_only(
        model,
        [STOCKSENT, "report", "--model", str(model)],
        [STOCKSENT, "report", "--model", str(model), "--out", str(out)],
    )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip() == (
        f"stocksent: error: cannot write {model / 'report.html'}: Permission denied; "
        "give --out a path in a folder you can write"
    )
    assert written.returncode == 0, written.stderr
    assert out.stat().st_size > 10_000


def test_a_missing_output_folder_is_refused_not_made(small_model_dir, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "report.html"
    assert main(["report", "--model", str(small_model_dir), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "no").exists()
