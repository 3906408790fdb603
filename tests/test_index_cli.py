"""`stocksent index` on the command line: tables, plot, and one-line errors with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import DATA_PATH
from stocksent import SentimentModel
from stocksent.cli import main

API = Path(__file__).parent / "fixtures" / "stocktwits_api"
EMOTIONS = DATA_PATH.parent / "StockEmotions_2020.csv.gz"
PRICES = DATA_PATH.parent / "StockEmotions_2020_prices.csv.gz"


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_index_api_json_to_parquet_with_the_real_small_model(small_model_dir, tmp_path, capsys):
    out = tmp_path / "index.parquet"
    code, _, err = run_cli(capsys, "index", API, "--model", small_model_dir, "--output", out, "--window", "5")
    assert code == 0, err
    df = pd.read_parquet(out)
    assert df.n_msgs.sum() == 12
    assert df.model_id.str.fullmatch(r"small-[0-9a-f]{12}").all()  # the id serve and score show
    assert set(df.model_id) == {SentimentModel.load(small_model_dir).model_id}
    assert df.mean_p.dropna().between(0, 1).all()
    assert "wrote" in err and "rows" in err


def test_index_real_slice_to_csv_with_plot_and_prices(small_model_dir, tmp_path, capsys):
    head = tmp_path / "emotions.csv"
    pd.read_csv(EMOTIONS, nrows=800).to_csv(head, index=False)
    out, png = tmp_path / "index.csv", tmp_path / "index.png"
    code, _, err = run_cli(
        capsys,
        "index",
        head,
        "--model",
        small_model_dir,
        "-o",
        out,
        "--tickers",
        "TSLA,AAPL",
        "--freq",
        "1W",
        "--plot",
        png,
        "--prices",
        PRICES,
    )
    assert code == 0, err
    df = pd.read_csv(out)
    assert set(df.ticker) == {"TSLA", "AAPL"} and set(df.session) == {"week"}
    assert png.stat().st_size > 20_000


def test_pre_scored_input_needs_no_model(tmp_path, capsys):
    scored = tmp_path / "scored.csv"
    scored.write_text("created_at,symbols,message,p_bullish\n2020-07-06T15:00:00Z,AAPL,x,0.7\n")
    out = tmp_path / "i.csv"
    code, _, err = run_cli(capsys, "index", scored, "-o", out, "--calendar", "24x7", "--freq", "1h")
    assert code == 0, err
    assert pd.read_csv(out).n_bull.tolist() == [1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["/no/such/file.csv", "-o", "{tmp}/x.csv"], "no such file"),
        ([str(DATA_PATH), "-o", "{tmp}/x.csv"], "time column"),
        ([str(API), "-o", "{tmp}/x.csv", "--prices", str(PRICES)], "--plot"),
        ([str(API), "-o", "{tmp}/x.csv", "--plot", "{tmp}/x.svg"], ".png"),
        ([str(API), "-o", "{tmp}/x.csv", "--window", "5", "--min-periods", "9"], "--min-periods"),
        ([str(API), "-o", "{tmp}/x.csv"], "p_bullish"),
        ([str(API), "-o", "{tmp}/x.csv", "--model", "{tmp}/nomodel"], "nomodel"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    code, out, err = run_cli(capsys, "index", *[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("stocksent: error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()  # nothing half-written


def test_bad_option_values_exit_2(tmp_path, capsys):
    for extra, word in (
        (["--freq", "5min"], "--freq"),
        (["--window", "1"], "--window"),
        (["--tickers", ","], "--tickers"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["index", str(API), "-o", str(tmp_path / "x.csv"), *extra])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert word in err and "Traceback" not in err


def test_out_of_range_and_unreadable_times_are_counted_bad_rows(tmp_path, capsys):
    """9999-12-31, -1, year 0 or 1900 is a counted bad row, never a pandas traceback or a century of periods."""
    scored = tmp_path / "times.csv"
    scored.write_text(
        "created_at,symbols,message,p_bullish\n"
        "2020-07-06T15:00:00Z,AAPL,x,0.7\n"
        "9999-12-31T23:59:59Z,AAPL,x,0.7\n"
        "-1,AAPL,x,0.7\n"
        "0000-01-01T00:00:00Z,AAPL,x,0.7\n"
        "1900-01-01,AAPL,x,0.7\n"
        "2020-07-06T16:30:00Z,AAPL,x,0.2\n"
    )
    out = tmp_path / "i.csv"
    code, _, err = run_cli(capsys, "index", scored, "-o", out, "--calendar", "24x7", "--freq", "30min")
    assert code == 0, err
    assert "Traceback" not in err and "bad time" in err and ": 4" in err
    df = pd.read_csv(out)
    assert df.n_msgs.sum() == 2 and len(df) == 4  # 15:00 .. 16:30: four half-hours, not 2,106,894


def test_tickers_follow_one_rule_and_no_csv_cell_starts_a_formula(tmp_path, capsys):
    scored = tmp_path / "tickers.csv"
    scored.write_text(
        "created_at,symbols,message,p_bullish\n"
        "2020-07-06T15:00:00Z,=cmd|calc!A1,x,0.7\n"
        "2020-07-06T15:00:00Z,AAPL\u200d,x,0.7\n"
        "2020-07-06T15:00:00Z,\u202eAAPL,x,0.7\n"
        "2020-07-06T15:00:00Z,AAPL,x,0.2\n"
        "2020-07-06T15:00:00Z,+SUM(1),x,0.2\n",
        encoding="utf-8",
    )
    out = tmp_path / "i.csv"
    code, _, err = run_cli(capsys, "index", scored, "-o", out, "--calendar", "24x7", "--freq", "1h")
    assert code == 0, err
    df = pd.read_csv(out)
    assert df.ticker.tolist() == ["AAPL"] and df.n_msgs.tolist() == [3]  # look-alikes are AAPL; formulas no ticker
    text_cells = pd.read_csv(out, dtype=str).select_dtypes(object).stack()
    assert not text_cells.str.startswith(("=", "+", "@")).any()
