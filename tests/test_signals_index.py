"""sentiment_index end to end: StockTwits API fixtures, a real StockEmotions slice, streaming invariance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_PATH
from stocksent.errors import StocksentError
from stocksent.readers import api_row
from stocksent.signals import sentiment_index

API = Path(__file__).parent / "fixtures" / "stocktwits_api"
EMOTIONS = DATA_PATH.parent / "StockEmotions_2020.csv.gz"


class KeywordModel:
    """A stand-in model whose labels a test can predict: 'bull' -> 0.9, 'bear' -> 0.1, else 0.5."""

    threshold = 0.5

    def predict_proba(self, texts):
        return np.array([0.9 if "bull" in t else 0.1 if "bear" in t else 0.5 for t in texts], dtype=np.float32)


@pytest.fixture(scope="module")
def emotions() -> pd.DataFrame:
    if not EMOTIONS.is_file():
        pytest.fail(f"real dataset missing: expected it at {EMOTIONS}")
    return pd.read_csv(EMOTIONS, nrows=1500)  # sorted by date: January to mid-February 2020


def row(df, ticker, date):
    rows = df[(df.ticker == ticker) & (df.session_date.astype(str) == date)] if "nyse" in set(df.calendar) else None
    assert rows is not None and len(rows) == 1, (ticker, date)
    return rows.iloc[0]


def test_api_fixtures_counts_sessions_duplicates_and_reshares():
    df = sentiment_index(API, KeywordModel(), window=2)
    # 8 distinct stock messages (+2 reshared copies, +1 duplicate) and 3 distinct BTC.X (+1 duplicate line):
    # each counted once per ticker it names (230000003 names AAPL and MSFT).
    assert df.n_msgs.sum() == 12
    assert df.groupby("ticker").n_msgs.sum().to_dict() == {"AAPL": 6, "MSFT": 3, "BTC.X": 3}
    nyse = df[df.calendar == "nyse"]
    assert list(nyse[nyse.ticker == "AAPL"].session_date.astype(str)) == ["2020-07-02", "2020-07-06"]
    monday = row(nyse, "AAPL", "2020-07-06")
    # 16:00 Thursday (after-hours), the holiday and Sunday (closed), 09:00 Monday (pre-market), the quote reshare.
    assert (monday.n_msgs, monday.n_after_hours, monday.n_closed, monday.n_pre_market, monday.n_regular) == (
        5,
        1,
        2,
        1,
        1,
    )
    assert monday.n_users == 5 and monday.n_multi == 1
    assert (monday.n_tagged_bull, monday.n_tagged_bear) == (3, 1)
    assert (monday.n_bull, monday.n_bear) == (3, 2)
    thursday = row(nyse, "AAPL", "2020-07-02")
    assert thursday.n_msgs == 1 and thursday.n_regular == 1  # 15:59:59; its pure reshare is not counted again
    assert row(nyse, "MSFT", "2020-07-07").n_after_hours == 1
    btc = df[df.ticker == "BTC.X"]
    assert set(btc.calendar) == {"24x7"} and btc.session.isna().all()
    assert list(btc.n_msgs) == [2, 1]  # 10:00 and 23:59:59 on 4 July, 00:00 on 5 July (UTC)


def test_the_same_files_twice_count_once():
    once = sentiment_index(API, KeywordModel())
    twice = sentiment_index([API, API], KeywordModel())
    pd.testing.assert_frame_equal(once, twice)


def test_reshares_are_the_original_unless_they_add_words():
    original = {
        "id": 1,
        "body": "$F up",
        "created_at": "2020-01-02T15:00:00Z",
        "user": {"id": 9},
        "symbols": [{"symbol": "F"}],
        "entities": {"sentiment": {"basic": "Bullish"}},
    }
    copy = {
        "id": 2,
        "body": "",
        "created_at": "2020-01-03T15:00:00Z",
        "user": {"id": 8},
        "symbols": [{"symbol": "F"}],
        "entities": {"sentiment": None},
        "reshare_message": {"message": original},
    }
    same_text = {**copy, "id": 3, "body": " $F up "}
    quote = {**copy, "id": 4, "body": "$F no way, selling"}
    for reshare in (copy, same_text):
        flat = api_row(reshare, reshares=True)
        assert (flat["id"], flat["user_id"], flat["created_at"], flat["sentiment"]) == (
            1,
            9,
            "2020-01-02T15:00:00Z",
            "Bullish",
        )
        assert flat["reshare_of_id"] == 1
    flat = api_row(quote, reshares=True)
    assert (flat["id"], flat["body"], flat["reshare_of_id"]) == (4, "$F no way, selling", None)
    # Not a reshare: its own (empty) message, which has no words to score.
    assert api_row({**copy, "reshare_message": None}, reshares=True)["body"] == ""


def test_a_table_with_reshare_columns_counts_copies_once():
    table = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "created_at": ["2020-01-02T15:00:00Z", "2020-01-06T15:00:00Z", "2020-01-06T16:00:00Z"],
            "symbols": ["F", "F", "F"],
            "body": ["$F bull", "$F bull", "$F bear"],
            "reshare_of_id": [None, 1, None],
            "reshare_of_created_at": [None, "2020-01-02T15:00:00Z", None],
        }
    )
    df = sentiment_index(table, KeywordModel())
    assert df.n_msgs.sum() == 2
    assert row(df, "F", "2020-01-02").n_msgs == 1


def test_counts_add_up_on_a_real_slice(emotions):
    df = sentiment_index(emotions, KeywordModel())
    assert df.n_msgs.sum() == emotions.id.nunique() == len(emotions)
    assert df.n_tagged_bull.sum() == (emotions.sentiment == "bullish").sum()
    assert df.n_tagged_bear.sum() == (emotions.sentiment == "bearish").sum()
    assert (df.n_bull + df.n_bear == df.n_msgs).all()
    for ticker, n in emotions.ticker.value_counts().items():
        assert df[df.ticker == ticker].n_msgs.sum() == n
    # Bare dates: counted for their day (or the next session), in no part of it.
    assert (df[["n_pre_market", "n_regular", "n_after_hours", "n_closed"]].sum() == 0).all()
    assert df.n_users.isna().all()  # the file has no user ids: unknown, not zero


def test_interval_contains_the_share_and_empty_periods_are_rows(emotions):
    df = sentiment_index(emotions, KeywordModel())
    busy = df[df.n_msgs > 0]
    assert ((busy.ci_lo <= busy.share_bull) & (busy.share_bull <= busy.ci_hi)).all()
    empty = df[df.n_msgs == 0]
    assert len(empty) > 0 and empty.share_bull.isna().all() and empty.ci_lo.isna().all()
    # Every NYSE session between a ticker's first and last message is a row, once.
    for _, rows in df.groupby("ticker"):
        dates = pd.to_datetime(rows.session_date)
        assert dates.is_monotonic_increasing and dates.is_unique


def test_z_scores_do_not_look_ahead(emotions):
    full = sentiment_index(emotions, KeywordModel(), window=10, min_periods=5)
    cut_date = "2020-02-03"
    cut = sentiment_index(emotions[emotions.date <= "2020-02-01"], KeywordModel(), window=10, min_periods=5)
    # 1 and 2 February are a weekend: messages up to 1 February count for the 3 February session at most.
    merged = cut.merge(full, on=["ticker", "period_start"], suffixes=("_cut", "_full"))
    merged = merged[merged.session_date_cut.astype(str) < cut_date]
    assert len(merged) > 100 and merged.z_volume_cut.notna().sum() > 50
    for name in ("z_sentiment", "z_volume", "n_msgs", "share_bull"):
        pd.testing.assert_series_equal(merged[f"{name}_cut"], merged[f"{name}_full"], check_names=False)


def test_streaming_batches_and_spilling_give_the_same_index(emotions):
    reference = sentiment_index(emotions, KeywordModel())
    small = sentiment_index(
        [emotions.iloc[i : i + 97] for i in range(0, len(emotions), 97)], KeywordModel(), max_resident_keys=50
    )
    pd.testing.assert_frame_equal(reference, small)


def test_multi_symbol_messages_ticker_filter_and_single_ticker_only():
    table = pd.DataFrame(
        {
            "id": ["a1", "a2", "a3"],
            "created_at": ["2020-07-06T15:00:00Z"] * 3,
            "symbols": ["$AAPL, $MSFT", "AAPL", '["TSLA", "MSFT"]'],
            "message": ["bull", "bear", "bull"],
        }
    )
    df = sentiment_index(table, KeywordModel())
    assert df.set_index("ticker").n_msgs.to_dict() == {"AAPL": 2, "MSFT": 2, "TSLA": 1}
    assert df.set_index("ticker").n_multi.to_dict() == {"AAPL": 1, "MSFT": 2, "TSLA": 1}
    only = sentiment_index(table, KeywordModel(), tickers=["msft"])
    assert list(only.ticker) == ["MSFT"] and only.n_msgs.iloc[0] == 2
    single = sentiment_index(table, KeywordModel(), single_ticker_only=True)
    assert single.set_index("ticker").n_msgs.to_dict() == {"AAPL": 1}


def test_pre_scored_input_needs_no_model_and_calendars_can_be_forced():
    table = pd.DataFrame(
        {
            "created_at": ["2020-07-04T10:00:00Z", "2020-07-04T11:00:00Z"],
            "ticker": ["AAPL", "BTC.X"],
            "message": ["x", "y"],
            "p_bullish": [0.8, 0.2],
        }
    )
    df = sentiment_index(table)
    assert df.set_index("ticker").calendar.to_dict() == {"AAPL": "nyse", "BTC.X": "24x7"}
    assert df.model_id.iloc[0] == "input p_bullish" and df.mean_p.round(3).tolist() == [0.8, 0.2]
    utc = sentiment_index(table, calendar="24x7")
    assert set(utc.calendar) == {"24x7"}
    with pytest.raises(StocksentError, match="p_bullish"):
        sentiment_index(table.drop(columns="p_bullish"))


def test_user_errors_are_one_line_messages():
    with pytest.raises(StocksentError, match="time column"):
        sentiment_index(pd.DataFrame({"ticker": ["A"], "message": ["m"]}), KeywordModel())
    with pytest.raises(StocksentError, match="no messages left"):
        sentiment_index(
            pd.DataFrame({"date": ["2020-01-02"], "ticker": ["A"], "message": ["m"]}), KeywordModel(), tickers=["B"]
        )
    with pytest.raises(StocksentError, match="window"):
        sentiment_index(API, KeywordModel(), window=1)
    with pytest.raises(StocksentError, match="intraday"):
        sentiment_index(
            pd.DataFrame({"date": ["2020-01-02"], "ticker": ["A"], "message": ["m"]}), KeywordModel(), freq="1h"
        )


def test_an_iterator_of_tables_is_streamed_not_listed(emotions):
    yielded = []

    def batches():
        for i in range(0, 600, 100):
            yielded.append(i)
            yield emotions.iloc[i : i + 100]

    class Recording(KeywordModel):
        seen_at_call: list = []

        def predict_proba(self, texts):
            self.seen_at_call.append(len(yielded))
            return super().predict_proba(texts)

    model = Recording()
    df = sentiment_index(batches(), model)
    assert df.n_msgs.sum() == 600
    assert model.seen_at_call == [1, 2, 3, 4, 5, 6]  # each batch scored before the next is read
