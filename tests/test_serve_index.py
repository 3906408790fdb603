"""`stocksent serve --index`: GET /v1/index and /v1/index/info over StockEmotions 2020 scored by a
real model, against the library's own index of the same messages (the same rows, the same
numbers), the closes against the prices file, every query mistake a JSON 4xx, the page and its
vendored chart library, and the command's flags. The page in a browser: tests/test_browser.py."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from conftest import EMOTIONS, EMOTIONS_PRICES, assert_one_line
from serve_helpers import running_server
from stocksent.artifacts import read_json
from stocksent.cli import main
from stocksent.errors import StocksentError
from stocksent.rates import read_rates
from stocksent.serving.factory import model_id
from stocksent.serving.index_api import index_reply
from stocksent.serving.index_source import IndexOptions, IndexSource
from stocksent.serving.limits import MAX_INDEX_ROWS, MAX_INDEX_TICKERS
from stocksent.serving.replies import ApiError
from stocksent.signals.index import sentiment_index

STATIC = Path(__file__).resolve().parents[1] / "src" / "stocksent" / "serving" / "static"


@pytest.fixture(scope="module")
def served(small_model_dir, emotions_scored):
    args = ("--index", str(emotions_scored), "--prices", str(EMOTIONS_PRICES), "--freq", "1W")
    with running_server(small_model_dir, *args) as url:
        yield url


@pytest.fixture(scope="module")
def library_index(small_model_dir, emotions_scored):
    """The library's index of the same scored messages with the same model's rates, per freq."""
    tables = {}

    def at(freq: str) -> pd.DataFrame:
        if freq not in tables:
            tables[freq] = sentiment_index(
                [emotions_scored],
                None,
                freq=freq,
                rates=read_rates(small_model_dir),
                model_id=model_id(small_model_dir),
            )
        return tables[freq]

    return at


def get(url: str, query: str = "") -> httpx.Response:
    return httpx.get(f"{url}/v1/index{query}", timeout=120)


def assert_error(response: httpx.Response, status: int, code: str, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code and set(body) >= {"error", "message"}, body
    for word in words:
        assert word in body["message"], body
    assert "Traceback" not in response.text
    return body


def same(value, expected) -> bool:
    """A reply's JSON value against the library's (NaN and None as null; times and dates as text)."""
    if pd.isna(expected):
        return value is None
    if isinstance(expected, pd.Timestamp):
        return pd.Timestamp(value) == expected
    if isinstance(expected, (bool, np.bool_)):
        return value is bool(expected)
    if hasattr(expected, "isoformat"):  # a session date
        return value == expected.isoformat()
    if isinstance(expected, (float, np.floating)):
        return isinstance(value, (int, float)) and float(value) == float(expected)
    return value == expected


def assert_rows_are(rows: list[dict], frame: pd.DataFrame) -> None:
    assert len(rows) == len(frame)
    for row, (_, expected) in zip(rows, frame.iterrows()):
        assert list(row) == list(frame.columns)
        wrong = {c: (row[c], expected[c]) for c in frame.columns if not same(row[c], expected[c])}
        assert not wrong, (row["ticker"], row["session_date"], wrong)


def test_the_rows_are_the_librarys_index_of_the_same_messages(served, library_index, small_model_dir):
    body = get(served, "?ticker=TSLA,$aapl&freq=1W").json()
    expected = library_index("1W")
    assert body["model"] == model_id(small_model_dir) and body["freq"] == "1W"
    assert body["tickers"] == ["TSLA", "AAPL"] and body["start"] is None and body["end"] is None
    assert body["columns"] == list(expected.columns)
    assert "share_bull_adj" in body["columns"] and "adj_lo" in body["columns"]  # the small model has rates.json
    wanted = pd.concat([expected[expected["ticker"] == t] for t in ("TSLA", "AAPL")])
    assert_rows_are(body["rows"], wanted)
    tsla = [r for r in body["rows"] if r["ticker"] == "TSLA"]
    assert sum(r["n_msgs"] for r in tsla) == int((pd.read_csv(EMOTIONS)["ticker"] == "TSLA").sum())  # 4,341
    assert any(r["share_bull_adj"] is not None and r["share_bull_adj"] != r["share_bull"] for r in tsla)


def test_dates_bound_the_rows_and_the_closes(served, library_index):
    body = get(served, "?ticker=TSLA,%20ba&freq=1D&start=2020-03-02&end=2020-06-30").json()
    daily = library_index("1D")
    dates = pd.to_datetime(daily["session_date"])
    inside = daily[(dates >= "2020-03-02") & (dates <= "2020-06-30")]
    assert_rows_are(body["rows"], pd.concat([inside[inside["ticker"] == t] for t in ("TSLA", "BA")]))
    assert body["rows"] and body["start"] == "2020-03-02" and body["end"] == "2020-06-30"

    prices = pd.read_csv(EMOTIONS_PRICES)
    prices = prices[
        prices["ticker"].isin(["TSLA", "BA"]) & (prices["date"] >= "2020-03-02") & (prices["date"] <= "2020-06-30")
    ]
    expected = [
        {"ticker": t, "date": d, "close": c}
        for t in ("TSLA", "BA")
        for d, c in prices[prices["ticker"] == t].sort_values("date")[["date", "close"]].itertuples(index=False)
    ]
    assert body["prices"] == expected and len(expected) > 150


def test_without_freq_the_reply_is_at_serves_freq(served):
    body = get(served, "?ticker=DIS").json()
    assert body["freq"] == "1W" and {r["session"] for r in body["rows"]} == {"week"}


def test_info_lists_what_there_is_to_ask_for(served, library_index, small_model_dir):
    info = httpx.get(f"{served}/v1/index/info").json()
    weekly = library_index("1W")
    counts = weekly.groupby("ticker")["n_msgs"].sum()
    assert [t["ticker"] for t in info["tickers"]][:3] == ["TSLA", "AAPL", "BA"]  # most messages first
    assert {t["ticker"]: t["n_msgs"] for t in info["tickers"]} == counts.to_dict()
    assert info["model"] == model_id(small_model_dir) and info["freq"] == "1W" and info["calendar"] == "auto"
    assert info["freqs"] == ["30min", "1h", "1D", "1W"] and info["neutral"] is None
    assert info["corrected"] is True and info["note"] is None and info["prices"] is True
    assert info["limits"] == {"max_tickers": MAX_INDEX_TICKERS, "max_rows": MAX_INDEX_ROWS}
    tsla = info["tickers"][0]
    assert tsla["calendar"] == "nyse" and tsla["first"] <= "2020-01-03" and tsla["last"] >= "2020-12-28"


@pytest.mark.parametrize(
    ("query", "status", "code", "words"),
    [
        ("", 422, "invalid_request", ["query.ticker", "required"]),
        ("?ticker=", 422, "invalid_request", ["give one or more tickers", "/v1/index/info"]),
        ("?ticker=,,", 422, "invalid_request", ["give one or more tickers"]),
        ("?ticker=NOPE", 404, "unknown_ticker", ['"NOPE"', "/v1/index/info"]),
        ("?ticker=TSLA,%F0%9F%9A%80", 422, "invalid_request", ["is not a ticker"]),
        ("?ticker=TSLA&freq=2D", 422, "invalid_request", ["query.freq", "1W"]),
        ("?ticker=TSLA&start=2020-13-01", 422, "invalid_request", ["query.start"]),
        ("?ticker=TSLA&end=yesterday", 422, "invalid_request", ["query.end"]),
        ("?ticker=TSLA&start=2020-06-01&end=2020-05-01", 422, "invalid_request", ["after end"]),
        ("?ticker=" + "x" * 5000, 422, "invalid_request", ["is not a ticker"]),
    ],
)
def test_query_mistakes_are_json_4xx(served, query, status, code, words):
    body = assert_error(get(served, query), status, code, *words)
    assert len(body["message"]) < 300  # what the client sent is echoed bounded


def test_more_tickers_than_a_reply_holds_is_422(served):
    tickers = [t["ticker"] for t in httpx.get(f"{served}/v1/index/info").json()["tickers"]][: MAX_INDEX_TICKERS + 1]
    body = assert_error(get(served, "?ticker=" + ",".join(tickers)), 422, "too_many_tickers", str(MAX_INDEX_TICKERS))
    assert body["limit"] == MAX_INDEX_TICKERS
    assert get(served, "?ticker=" + ",".join(tickers[:-1])).status_code == 200


def test_a_freq_the_messages_cannot_give_is_422_and_the_server_stays_up(served):
    """StockEmotions has dates, no times: no 30-minute periods (asked twice: the answer is kept)."""
    for _ in range(2):
        assert_error(get(served, "?ticker=TSLA&freq=30min"), 422, "freq_unavailable", "freq=30min", "no time")
    assert httpx.get(f"{served}/healthz").status_code == 200
    assert get(served, "?ticker=TSLA&freq=1W").status_code == 200


def test_the_page_and_its_assets_are_served_from_the_package(served):
    page = httpx.get(f"{served}/index")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert policy["default-src"] == "'none'" and page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline for the policy to allow
    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", page.text)
    assert {"/static/uPlot.iife.min.js", "/static/index-page.js", "/static/uPlot.min.css"} <= set(assets)
    assert all(a.startswith("/") for a in assets)  # nothing from another site
    for asset in [*assets, "/static/index-charts.js"]:
        response = httpx.get(f"{served}{asset}")
        assert response.status_code == 200 and response.content, asset
    head = httpx.head(f"{served}/index")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(page.content))


def test_the_vendored_chart_library_is_the_release_its_note_names():
    note = (STATIC / "uPlot.SOURCE.txt").read_text(encoding="utf-8")
    version = re.search(r"^uPlot (\d+\.\d+\.\d+)", note).group(1)
    assert f"npm pack uplot@{version}" in note and f"uplot-{version}.tgz" in note
    for name, digest in re.findall(r"^\s+(uPlot\.\S+)\s+sha256 ([0-9a-f]{64})$", note, re.MULTILINE):
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
    assert len(re.findall(r"sha256 [0-9a-f]{64}", note)) == 2
    assert (
        (STATIC / "uPlot.iife.min.js")
        .read_text(encoding="utf-8")
        .startswith(f"/*! https://github.com/leeoniya/uPlot (v{version}) */")
    )
    assert "The MIT License" in (STATIC / "uPlot.LICENSE").read_text(encoding="utf-8")


def test_the_openapi_document_describes_the_index(served):
    spec = httpx.get(f"{served}/openapi.json").json()
    route = spec["paths"]["/v1/index"]["get"]
    parameters = {p["name"]: p for p in route["parameters"]}
    assert set(parameters) == {"ticker", "freq", "start", "end"}
    assert "1W" in str(parameters["freq"]["schema"]) and "date" in str(parameters["start"]["schema"])
    assert {"200", "404", "422"} <= set(route["responses"])
    assert "/v1/index/info" in spec["paths"]


# --------------------------------------------------------------------------- in process: limits, models without rates


def threshold_of(model_dir: Path) -> float:
    return read_json(model_dir / "config.json")["threshold"]


@pytest.fixture(scope="module")
def source(small_model_dir, emotions_scored) -> IndexSource:
    return IndexSource(
        IndexOptions(str(emotions_scored), freq="1W"), small_model_dir, threshold_of(small_model_dir), "small"
    )


def test_a_reply_over_the_row_limit_is_refused(source):
    table = source.table("1W")
    reply = index_reply(source, table, ["TSLA"], "1W", None, None, max_rows=53)
    assert len(reply["rows"]) == 53
    with pytest.raises(ApiError) as refused:
        index_reply(source, table, ["TSLA", "AAPL"], "1W", None, None, max_rows=53)
    assert refused.value.status == 422 and refused.value.code == "too_many_rows" and "start=" in refused.value.message


def test_24x7_rows_are_dated_by_their_start(small_model_dir, emotions_scored):
    import datetime

    options = IndexOptions(str(emotions_scored), calendar="24x7")
    source = IndexSource(options, small_model_dir, threshold_of(small_model_dir), "small")
    rows = source.table("1D").select(["TSLA", "AAPL"], datetime.date(2020, 3, 6), datetime.date(2020, 3, 9))
    days = rows["period_start"].dt.strftime("%Y-%m-%d").tolist()
    assert days == ["2020-03-06", "2020-03-07", "2020-03-08", "2020-03-09"] * 2  # weekends are periods on 24x7
    assert rows["ticker"].tolist() == ["TSLA"] * 4 + ["AAPL"] * 4 and rows["session_date"].isna().all()


def test_a_model_without_rates_serves_no_corrected_shares_and_says_why(synthetic_model_dir, emotions_scored):
    source = IndexSource(IndexOptions(str(emotions_scored)), synthetic_model_dir, 0.5, "synthetic")
    assert source.rates is None and "rates.json" in source.note and "train it again" in source.note
    columns = source.table("1D").frame.columns
    assert "share_bull" in columns and not [c for c in columns if c.startswith(("share_bull_", "adj_"))]


def test_the_options_reach_the_workers_whole(tmp_path):
    options = IndexOptions("scored.parquet", freq="1W", calendar="nyse", neutral=(0.4, 0.6), prices="p.csv")
    back = IndexOptions.from_json(options.to_json())
    assert back.neutral == (0.4, 0.6) and back.freq == "1W" and back.calendar == "nyse"
    assert Path(back.inputs).is_absolute() and Path(back.prices).name == "p.csv"


# --------------------------------------------------------------------------- the command


def test_index_flags_without_index_are_one_line(small_model_dir, capsys):
    assert main(["serve", "--model", str(small_model_dir), "--prices", str(EMOTIONS_PRICES), "--freq", "1W"]) == 2
    err = capsys.readouterr().err
    assert "--prices, --freq are for the index: add --index SCORED" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("index", "words"),
    [
        (str(EMOTIONS), "no p_bullish column: score the messages first"),  # messages, not scores
        ("missing.parquet", "missing.parquet"),
    ],
)
def test_an_index_that_cannot_be_served_stops_serve_with_one_line(
    small_model_dir, index, words, capsys, keep_torch_threads
):
    assert main(["serve", "--model", str(small_model_dir), "--port", "0", "--index", index]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err


def test_a_bad_prices_file_stops_serve_with_one_line(small_model_dir, emotions_scored, capsys, keep_torch_threads):
    args = ["serve", "--model", str(small_model_dir), "--port", "0", "--index", str(emotions_scored)]
    assert main([*args, "--prices", str(EMOTIONS)]) == 2  # messages, not prices: no close column
    err = capsys.readouterr().err
    assert "has no close column" in err and len(err.strip().splitlines()) == 1


def test_a_bad_freq_is_refused_by_the_library_too(small_model_dir, emotions_scored):
    with pytest.raises(StocksentError) as refused:
        IndexSource(
            IndexOptions(str(emotions_scored), freq="2D"), small_model_dir, threshold_of(small_model_dir), "small"
        )
    assert_one_line(refused)


def test_every_worker_serves_the_same_index(small_model_dir, emotions_scored, served):
    """`--workers 2`: each worker computes the index from the options the parent hands over."""
    args = ("--index", str(emotions_scored), "--freq", "1W", "--neutral", "0.05,0.95", "--workers", "2")
    with running_server(small_model_dir, *args, timeout=240) as url:
        bodies = [get(url, "?ticker=AAPL").json() for _ in range(6)]
        info = httpx.get(f"{url}/v1/index/info").json()
    assert info["neutral"] == [0.05, 0.95] and info["prices"] is False
    assert all(b == bodies[0] for b in bodies) and bodies[0]["prices"] is None
    assert sum(r["n_neutral"] for r in bodies[0]["rows"]) > 0
    plain = get(served, "?ticker=AAPL").json()  # the same messages without the band
    assert [r["n_msgs"] for r in bodies[0]["rows"]] == [r["n_msgs"] for r in plain["rows"]]
