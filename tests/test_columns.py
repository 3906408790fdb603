"""stocksent.columns: the one set of column rules (text, id, time, tickers, labels) every command uses."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from stocksent.columns import (
    EARLIEST,
    NO_TIME,
    TEXT_COLUMNS,
    cashtags,
    clean_ticker,
    find_column,
    id_keys,
    parse_labels,
    parse_times,
    resolve_text_column,
    ticker_lists,
)
from stocksent.errors import StocksentError

NOW = np.datetime64("2021-06-01T00:00:00", "ns").astype(np.int64)


def as_iso(ns: np.ndarray) -> list[str | None]:
    return [None if v == NO_TIME else str(np.datetime64(int(v), "ns"))[:19] for v in ns]


# --------------------------------------------------------------------------- which column


def test_one_text_column_rule():
    assert TEXT_COLUMNS == ("message", "body", "text")
    assert resolve_text_column(["text", "body", "message"], None) == "message"
    assert resolve_text_column(["text", "Body"], None) == "Body"
    assert resolve_text_column(["id", "TEXT"], None) == "TEXT"
    assert resolve_text_column(["tweet"], "tweet") == "tweet"
    with pytest.raises(StocksentError, match=r"no 'message', 'body' or 'text' column.*--text-column"):
        resolve_text_column(["tweet", "id"], None, "x.csv")
    with pytest.raises(StocksentError, match=r"x.csv has no column 'msg'"):
        resolve_text_column(["tweet"], "msg", "x.csv")


def test_find_column_prefers_an_exact_name_then_any_case():
    assert find_column(["Date", "created_at"], ("created_at", "date")) == "created_at"
    assert find_column([" Date "], ("created_at", "date")) == " Date "
    assert find_column(["x"], ("id",)) is None


# --------------------------------------------------------------------------- times


def test_times_in_the_formats_users_have_to_utc():
    values = [
        "2020-01-31T14:05:00Z",
        "2020-01-31T14:05:00",  # no zone: UTC, StockTwits' convention
        "2020-01-31 16:05:00+02:00",
        "2020-01-31",
        "1580479500",  # epoch seconds
        "1580479500000",  # epoch milliseconds
        " 2017-07-11T17:03:26.000Z ",
    ]
    times = parse_times(pa.array(values), now_ns=NOW)
    assert as_iso(times.ns) == [
        "2020-01-31T14:05:00",
        "2020-01-31T14:05:00",
        "2020-01-31T14:05:00",
        "2020-01-31T00:00:00",
        "2020-01-31T14:05:00",
        "2020-01-31T14:05:00",
        "2017-07-11T17:03:26",
    ]
    assert times.date_only.tolist() == [False, False, False, True, False, False, False]
    assert not times.bad.any()


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:59:59Z", "-1", "0000-01-01T00:00:00Z", "1900-01-01", "2004-12-31T23:59:59Z", "2021-06-03",
     "not a time", "99999999999999999999999", "2020-13-45"],
)  # fmt: skip
def test_implausible_or_unreadable_times_are_bad_values_never_a_traceback(value):
    times = parse_times(pa.array([value, "2020-01-31"]), now_ns=NOW)
    assert times.ns[0] == NO_TIME and times.bad.tolist() == [True, False]
    assert not times.date_only[0]


def test_missing_times_are_not_bad_and_arrow_times_are_read():
    times = parse_times(pa.array(["", None, "  "]), now_ns=NOW)
    assert (times.ns == NO_TIME).all() and not times.bad.any()
    stamps = pa.array([dt.datetime(2020, 1, 2, 3), dt.datetime(9000, 1, 1)], pa.timestamp("s"))
    parsed = parse_times(stamps, now_ns=NOW)
    assert as_iso(parsed.ns) == ["2020-01-02T03:00:00", None] and parsed.bad.tolist() == [False, True]
    dates = parse_times(pa.array([dt.date(2020, 1, 2)]), now_ns=NOW)
    assert as_iso(dates.ns) == ["2020-01-02T00:00:00"] and dates.date_only.tolist() == [True]
    epochs = parse_times(pa.array([1580479500, 1580479500000, -1, 0]), now_ns=NOW)
    assert as_iso(epochs.ns)[:2] == ["2020-01-31T14:05:00"] * 2 and epochs.bad.tolist() == [False, False, True, True]
    assert EARLIEST == np.datetime64("2005-01-01", "ns").astype(np.int64)


# --------------------------------------------------------------------------- tickers


def test_one_ticker_rule():
    assert clean_ticker("$btc.x") == "BTC.X"
    assert clean_ticker("BRK.B") == "BRK.B"
    assert clean_ticker(" aapl ") == "AAPL"
    assert clean_ticker("AAPL\u200d") == "AAPL"  # a zero-width joiner is not a different ticker
    assert clean_ticker("\u202eAAPL") == "AAPL"  # nor is a right-to-left override
    assert clean_ticker("ＡＡＰＬ") == "AAPL"  # full-width letters: NFKC
    for bad in (
        "=cmd|calc!A1",
        "=CMD",
        "CALC!A1",
        "+1",
        "-2",
        "@SUM(1)",
        "12",
        "",
        "$",
        "A B",
        "AAPL.",
        "TOOLONGTICKER1",
    ):
        assert clean_ticker(bad) is None, bad


def test_ticker_columns_and_cashtags_use_the_rule():
    column = pa.array(["AAPL,$TSLA", "=cmd|calc!A1", '["BTC.X", "aapl\u200d"]', None, "AAPL\u202e; aapl"])
    assert ticker_lists(column) == [["AAPL", "TSLA"], [], ["BTC.X", "AAPL"], [], ["AAPL"]]
    assert ticker_lists(pa.array([["AAPL", "=X"], None])) == [["AAPL"], []]
    assert cashtags(["$SPY up $spy $BTC.X, $150 $AA\u200dPL", None, "no tags"]) == [["SPY", "BTC.X", "AAPL"], [], []]


# --------------------------------------------------------------------------- labels


def test_labels_in_every_spelling():
    values = ["bullish", "Bearish", " BULLISH\n", "1", "0", "true", "FALSE", "", None, '{"basic": "Bullish"}']
    assert parse_labels(pa.array(values), "f.csv").tolist() == [1, 0, 1, 1, 0, 1, 0, -1, -1, 1]
    assert parse_labels(pa.array([True, None, False]), "f").tolist() == [1, -1, 0]
    assert parse_labels(pa.array([1, 0, None]), "f").tolist() == [1, 0, -1]


@pytest.mark.parametrize("value", ["neutral", "bull", "2", "yes", '{"basic": "Neutral"}'])
def test_any_other_label_is_an_error_naming_the_value_and_the_line(value):
    with pytest.raises(StocksentError) as error:
        parse_labels(pa.array(["bullish", value]), "data.csv", np.array([2, 5]))
    message = str(error.value)
    assert message.startswith("data.csv line 5: label ") and repr(value)[:30] in message
    assert "\n" not in message


# --------------------------------------------------------------------------- ids


def test_ids_as_integers_or_hashed_text():
    keys, present = id_keys(pa.array(["12", "abc", "", None, " 7 "]))
    assert present.tolist() == [True, True, False, False, True]
    assert keys[0] == 12 and keys[4] == 7 and keys[1] not in (0, 12, 7)
    ints, _ = id_keys(pa.array([12, 7]))
    assert ints.tolist() == [12, 7]  # the same message id as text or as a number is one key
