"""The lead-lag study: constructed series where a look-ahead would show, and the real StockEmotions 2020 run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_PATH
from stocksent.cli import main
from stocksent.errors import StocksentError
from stocksent.signals import sentiment_index
from stocksent.signals.periods import make_periods
from stocksent.signals.study import align, lead_lag

EMOTIONS = DATA_PATH.parent / "StockEmotions_2020.csv.gz"
PRICES = DATA_PATH.parent / "StockEmotions_2020_prices.csv.gz"


def sessions() -> pd.DatetimeIndex:
    periods = make_periods("nyse", "1D")
    keys = periods.grid(pd.Timestamp("2019-01-02").value, pd.Timestamp("2020-12-31").value)
    return pd.DatetimeIndex(pd.to_datetime(keys)).tz_localize(None)


def market(seed: int = 0) -> tuple[pd.DatetimeIndex, pd.DataFrame, np.ndarray]:
    """Two tickers on a random walk over 2019-2020: sessions, prices, and each session's log return."""
    days = sessions()
    rng = np.random.default_rng(seed)
    returns = rng.normal(0, 0.02, size=(2, len(days)))
    prices = pd.concat(
        [
            pd.DataFrame({"date": days, "ticker": t, "close": 100 * np.exp(np.cumsum(returns[i]))})
            for i, t in enumerate(("AAA", "BBB"))
        ]
    )
    returns[:, 0] = np.nan  # no return into the first session
    return days, prices, returns


def messages(days, returns, when: str, follows: int) -> pd.DataFrame:
    """Per session and ticker, 3 to 8 messages whose P(bullish) is the sign of the return `follows` sessions on.

    `when`: "after-close" (21:30 UTC, after the 16:00 New York close), "regular" (17:00 UTC) or "date"
    (a bare date: the time of day unknown).
    """
    rows = []
    volume = np.random.default_rng(len(days)).integers(3, 9, size=len(days))
    for i, ticker in enumerate(("AAA", "BBB")):
        for j, day in enumerate(days[:-6]):
            move = returns[i, j + follows]
            if not np.isfinite(move):
                continue
            stamp = (
                day.strftime("%Y-%m-%d")
                if when == "date"
                else f"{day:%Y-%m-%d}T{'21:30' if when == 'after-close' else '17:00'}:00Z"
            )
            for k in range(volume[j]):
                rows.append(
                    {
                        "created_at": stamp,
                        "ticker": ticker,
                        "p_bullish": 0.9 if move > 0 else 0.1,
                        "id": f"{ticker}{j}-{k}",
                    }
                )
    return pd.DataFrame(rows)


def study(frame: pd.DataFrame, prices: pd.DataFrame) -> dict:
    index = sentiment_index(frame, window=10, min_periods=5)
    return lead_lag(align(index, prices))["correlation"]


def test_a_crowd_that_reacts_after_the_close_predicts_nothing():
    """Messages after the close about that day's move: counted for the next session, so they do not 'predict' it."""
    days, prices, returns = market()
    r = study(messages(days, returns, "after-close", follows=0), prices)
    assert abs(r["same"]["r"]) < 0.15 and abs(r["next_1"]["r"]) < 0.15  # a look-ahead would show r near 0.8
    assert r["same"]["n"] > 800


def test_messages_during_the_session_about_the_next_move_are_found():
    """The one real lead the study must see: messages before the close that know the next session's move."""
    days, prices, returns = market(1)
    r = study(messages(days, returns, "regular", follows=1), prices)
    assert r["next_1"]["r"] > 0.6 and abs(r["same"]["r"]) < 0.15
    same = study(messages(days, returns, "regular", follows=0), prices)
    assert same["same"]["r"] > 0.6 and abs(same["next_1"]["r"]) < 0.15


def test_bare_dates_are_measured_one_session_later():
    """A message dated d may have been posted after d's close, when the next session's move had begun."""
    days, prices, returns = market(2)
    r = study(messages(days, returns, "date", follows=1), prices)
    assert abs(r["next_1"]["r"]) < 0.15  # its knowledge of session d+1 is not taken as a prediction
    reacting = study(messages(days, returns, "date", follows=0), prices)
    assert reacting["same"]["r"] > 0.6


def test_returns_are_log_returns_over_the_horizon():
    days, prices, returns = market(3)
    index = sentiment_index(messages(days, returns, "regular", follows=0), window=10, min_periods=5)
    panel = align(index, prices)
    row = panel[panel.ticker == "AAA"].iloc[30]
    j = days.get_loc(row.date)
    assert row.same == pytest.approx(returns[0, j])
    assert row.next_1 == pytest.approx(returns[0, j + 1])
    assert row.next_5 == pytest.approx(returns[0, j + 1 : j + 6].sum())


def test_a_non_daily_index_is_refused():
    days, prices, returns = market()
    weekly = sentiment_index(messages(days, returns, "regular", follows=0), freq="1W")
    with pytest.raises(StocksentError, match="--freq 1D"):
        align(weekly, prices)


@pytest.mark.slow
def test_the_study_on_stockemotions_with_its_prices(tmp_path, capsys):
    emotions = pd.read_csv(EMOTIONS)
    scored = tmp_path / "scored.parquet"
    # The authors' own tags as P(bullish): the study of what the crowd said, without a model's errors.
    emotions.assign(p_bullish=np.where(emotions.sentiment == "bullish", 0.9, 0.1)).to_parquet(scored)
    index, out, png = tmp_path / "index.parquet", tmp_path / "study.json", tmp_path / "study.png"
    assert main(["index", str(scored), "-o", str(index), "--window", "10", "--min-periods", "5"]) == 0
    code = main(["study", str(index), "--prices", str(PRICES), "-o", str(out), "--plot", str(png)])
    printed = capsys.readouterr().out
    assert code == 0
    result = json.loads(out.read_text())
    assert result["price_column"] == "adj_close" and result["tickers"] >= 15
    assert result["bare_date_rows_moved"] == result["sessions"]  # StockEmotions has dates only
    same, nxt = result["correlation"]["same"], result["correlation"]["next_1"]
    assert same["r"] > 0.1 and same["lo"] > 0  # the crowd moves with the day's return
    assert abs(nxt["r"]) < 0.1  # and says little about the next one
    assert set(result["panel"]) >= {"driscoll_kraay", "clustered_ticker_day"}
    assert "next session" in printed and png.stat().st_size > 20_000


def test_study_user_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "i.csv"
    bad.write_text("ticker,n_msgs\nA,1\n")
    assert main(["study", str(bad), "--prices", str(PRICES)]) == 2
    err = capsys.readouterr().err
    assert "stocksent --freq 1D" not in err and "lacks" in err and "Traceback" not in err
