"""The Spark index equals the local one on the same rows (counts exactly, floats within 1e-9), in local[2], on real data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_PATH

pytest.importorskip("pyspark", reason="pyspark not installed: pip install 'stocksent[spark]'")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Java is missing (Spark needs a JVM): install a JDK 17", allow_module_level=True)

from stocksent.errors import StocksentError  # noqa: E402
from stocksent.signals import sentiment_index as local_index  # noqa: E402
from stocksent.spark import sentiment_index  # noqa: E402

EMOTIONS = DATA_PATH.parent / "StockEmotions_2020.csv.gz"
PUBLIC = DATA_PATH.parent / "StockTwits_public_2012_2026.csv.gz"
API = Path(__file__).parent / "fixtures" / "stocktwits_api"


def scored(frame: pd.DataFrame, model_dir) -> pd.DataFrame:
    """`frame` as `stocksent score` writes it: every column kept, p_bullish and label added."""
    from stocksent.batch.scorer import BatchScorer

    return BatchScorer(model_dir, precision="float32")(frame)


@pytest.fixture(scope="module")
def emotions(small_model_dir) -> pd.DataFrame:
    """StockEmotions 2020 (10,000 messages, 37 tickers, dates) scored by a small real model."""
    return scored(pd.read_csv(EMOTIONS), small_model_dir)


@pytest.fixture(scope="module")
def rates(small_model_dir):
    from stocksent.rates import read_rates

    found = read_rates(small_model_dir)
    assert found is not None
    return found


def assert_same_index(got, expected: pd.DataFrame) -> None:
    """A Spark index equals a local one: the same columns and rows, counts and flags exactly, floats within 1e-9."""
    from pyspark.sql import functions as F

    got = got.withColumn("period_start", F.unix_micros("period_start")).withColumn(
        "period_end", F.unix_micros("period_end")
    )
    got = got.toPandas().sort_values(["ticker", "calendar", "period_start"], ignore_index=True)
    expected = expected.reset_index(drop=True).copy()
    for name in ("period_start", "period_end"):
        expected[name] = pd.DatetimeIndex(expected[name]).as_unit("us").asi8
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 0
    for name in expected.columns:
        mine, theirs = got[name], expected[name]
        assert (mine.isna().to_numpy() == theirs.isna().to_numpy()).all(), name
        mine, theirs = mine[theirs.notna()], theirs[theirs.notna()]
        if pd.api.types.is_float_dtype(theirs):
            np.testing.assert_allclose(mine.to_numpy(float), theirs.to_numpy(float), rtol=0, atol=1e-9, err_msg=name)
        elif pd.api.types.is_integer_dtype(theirs) or pd.api.types.is_bool_dtype(theirs):
            assert mine.astype("int64").tolist() == theirs.astype("int64").tolist(), name
        else:
            assert mine.astype(str).tolist() == theirs.astype(str).tolist(), name


@pytest.mark.parametrize(
    ("freq", "calendar", "neutral"),
    [("1D", "nyse", None), ("1W", "nyse", (0.4, 0.6)), ("1D", "24x7", (0.4, 0.6)), ("1W", "24x7", None)],
)
def test_stockemotions_daily_and_weekly_nyse_and_24x7_with_corrected_shares(
    spark, emotions, rates, freq, calendar, neutral
):
    options = {"freq": freq, "calendar": calendar, "neutral": neutral, "rates": rates, "window": 10}
    expected = local_index(emotions, **options)
    assert expected["share_bull_em"].notna().sum() > 500 and expected["z_sentiment"].notna().sum() > 100
    if neutral is not None:
        assert expected["n_neutral"].sum() > 0
    df = spark.createDataFrame(emotions).repartition(3)
    assert_same_index(sentiment_index(df, **options), expected)


def test_fill_a_ticker_filter_and_no_rates(spark, emotions):
    options = {"fill": True, "tickers": ["tsla", "$AAPL", "DIS"], "window": 4, "min_periods": 2}
    expected = local_index(emotions, **options)
    assert set(expected["ticker"]) == {"TSLA", "AAPL", "DIS"} and (expected["n_msgs"] == 0).sum() > 10
    assert_same_index(sentiment_index(spark.createDataFrame(emotions), **options), expected)


@pytest.fixture(scope="module")
def public(small_model_dir) -> pd.DataFrame:
    """The public corpus's dated messages (times, thousands of tickers, crypto, ids with duplicates), scored."""
    frame = pd.read_csv(PUBLIC, dtype={"id": "string"}, keep_default_na=False, na_values=[""])
    frame = frame[frame["created_at"].notna()].reset_index(drop=True)
    return scored(frame, small_model_dir)


@pytest.mark.slow
@pytest.mark.parametrize(("freq", "calendar"), [("1D", "auto"), ("30min", "24x7")])
def test_the_public_corpus_with_times_crypto_duplicates_and_thousands_of_tickers(spark, public, rates, freq, calendar):
    options = {"freq": freq, "calendar": calendar, "rates": rates, "window": 10}
    again = public[public["id"].notna()].iloc[::10]  # read twice: the second copy counts for nothing
    expected = local_index(pd.concat([public, again], ignore_index=True), **options)
    assert expected["ticker"].nunique() > 2000 and set(expected["calendar"]) >= {calendar.replace("auto", "nyse")}
    assert expected["n_msgs"].sum() == local_index(public, **options)["n_msgs"].sum()
    df = spark.createDataFrame(pd.concat([public, again], ignore_index=True)).repartition(4)
    assert_same_index(sentiment_index(df, **options), expected)


def test_api_messages_duplicates_reshares_users_and_parts_of_the_day(spark):
    """The hand-written API pages: a message in two pages, pure reshares, users, the holiday, crypto 24x7."""
    from stocksent.signals.inputs import iter_messages

    frame = pd.concat([batch.to_pandas() for batch in iter_messages(API)], ignore_index=True)
    frame["p_bullish"] = np.where(frame["body"].str.contains("bull|up|buy", case=False), 0.8, 0.3).astype(np.float32)
    expected = local_index(frame, window=2)
    assert expected["n_users"].notna().all() and expected["n_after_hours"].sum() > 0
    assert expected["n_msgs"].sum() < len(frame)  # the duplicate and the reshared copies
    assert_same_index(sentiment_index(spark.createDataFrame(frame).repartition(2), window=2), expected)


def test_the_first_of_two_rows_with_one_id_counts_as_the_local_index_counts_it(spark):
    """Rows sharing an id on one UTC day but naming other tickers or times: the first one read counts, in both;
    a message with no words to score (NaN) counts for nothing, and neither does its copy."""
    frame = pd.DataFrame(
        {
            "id": [7, 8, 7, 9, 8, 10, 10],
            "created_at": [
                "2020-03-02T15:00:00Z",
                "2020-03-02T16:00:00Z",
                "2020-03-02T21:30:00Z",  # id 7 again, after the close: would count for the next session
                "2020-03-03T15:00:00Z",
                "2020-03-05T15:00:00Z",  # id 8 on another day: the local seen-set counts it again
                "2020-03-03T15:00:00Z",
                "2020-03-03T15:00:00Z",
            ],
            "symbols": ["AAPL", "AAPL MSFT", "TSLA", "AAPL", "MSFT", "NFLX", "NFLX"],
            "p_bullish": np.array([0.9, 0.2, 0.7, 0.6, 0.4, np.nan, 0.5], dtype=np.float32),
        }
    )
    expected = local_index(frame, window=2)
    assert not {"TSLA", "NFLX"} & set(expected["ticker"]) and expected["n_msgs"].sum() == 5
    assert_same_index(sentiment_index(spark.createDataFrame(frame).coalesce(1), window=2), expected)


def test_timestamps_are_instants_whatever_the_session_time_zone(spark, emotions):
    """A TimestampType column read in a New York session gives the index of the same UTC instants."""
    frame = emotions.head(3000).copy()
    hours = pd.to_timedelta(np.arange(len(frame)) % 24, unit="h")
    frame["date"] = pd.to_datetime(frame["date"]).dt.tz_localize("UTC") + hours  # times, not dates
    expected = local_index(frame, freq="1h", calendar="nyse", window=5)
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        df = spark.createDataFrame(frame)
        assert dict(df.dtypes)["date"] == "timestamp"
        got = sentiment_index(df, freq="1h", calendar="nyse", window=5)
        assert_same_index(got, expected)
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)


def test_a_model_scores_the_messages_first(spark, emotions, small_model_dir, rates):
    from stocksent.batch.spark import score
    from stocksent.signals.index import model_settings

    texts = spark.createDataFrame(emotions.drop(columns=["p_bullish", "label"]).head(2000))
    got = sentiment_index(texts, str(small_model_dir), freq="1W")
    assert "share_bull_adj" in got.columns  # the model's rates.json
    model_id = model_settings(str(small_model_dir))[2]
    expected = local_index(score(texts, str(small_model_dir)).toPandas(), freq="1W", rates=rates, model_id=model_id)
    assert_same_index(got, expected)


def test_user_errors_are_one_line_messages_on_the_driver(spark, emotions):
    df = spark.createDataFrame(emotions.head(10))
    with pytest.raises(StocksentError, match="time column"):
        sentiment_index(df.drop("date"))
    with pytest.raises(StocksentError, match="p_bullish"):
        sentiment_index(df.drop("p_bullish"))
    with pytest.raises(StocksentError, match="window"):
        sentiment_index(df, window=1)
    with pytest.raises(StocksentError, match="calendar"):
        sentiment_index(df, calendar="lse")
    with pytest.raises(StocksentError, match="threshold"):
        sentiment_index(df, neutral=(0.6, 0.8))
