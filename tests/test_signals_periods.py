"""NYSE session assignment (exchange_calendars' XNYS) and plain UTC periods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stocksent.errors import StocksentError
from stocksent.signals.periods import PARTS, UNKNOWN, make_periods


def ns(*stamps: str) -> np.ndarray:
    return pd.DatetimeIndex(pd.to_datetime(list(stamps), utc=True)).as_unit("ns").asi8


def assign(freq: str, *stamps: str, calendar: str = "nyse"):
    periods = make_periods(calendar, freq)
    keys, parts = periods.assign(ns(*stamps))
    described = periods.describe(keys)
    dates = [str(d) for d in described["session_date"]]
    return dates, [PARTS[p] if p != UNKNOWN else None for p in parts], described


def test_the_close_at_16_new_york_time_moves_a_message_to_the_next_session():
    # 2020-07-02 is a Thursday; 3 July is the Independence Day holiday (observed): next session Monday 6 July.
    dates, parts, _ = assign("1D", "2020-07-02T19:59:59Z", "2020-07-02T20:00:00Z")  # 15:59:59 and 16:00 EDT
    assert dates == ["2020-07-02", "2020-07-06"]
    assert parts == ["regular", "after-hours"]


def test_holiday_weekend_and_pre_market_count_for_the_next_session():
    dates, parts, _ = assign("1D", "2020-07-03T15:00:00Z", "2020-07-05T12:00:00Z", "2020-07-06T13:29:00Z")
    assert dates == ["2020-07-06"] * 3
    assert parts == ["closed", "closed", "pre-market"]


def test_thanksgiving_and_the_early_close_the_day_after():
    # Thanksgiving 2020-11-26 is closed; Friday 27 November closes at 13:00 EST (18:00 UTC).
    dates, parts, described = assign(
        "1D", "2020-11-26T17:00:00Z", "2020-11-27T17:59:00Z", "2020-11-27T18:00:00Z", "2020-11-28T12:00:00Z"
    )
    assert dates == ["2020-11-27", "2020-11-27", "2020-11-30", "2020-11-30"]
    assert parts == ["closed", "regular", "after-hours", "closed"]
    assert pd.Timestamp(described["period_end"][1], tz="UTC") == pd.Timestamp("2020-11-27T18:00:00Z")


def test_daylight_saving_change_moves_the_open_in_utc():
    # DST began Sunday 2020-03-08: the open is 14:30 UTC on Friday 6 March and 13:30 UTC on Monday 9 March.
    dates, parts, _ = assign(
        "1D",
        "2020-03-06T14:29:00Z",
        "2020-03-06T14:30:00Z",
        "2020-03-06T21:00:00Z",
        "2020-03-09T13:29:00Z",
        "2020-03-09T13:30:00Z",
        "2020-03-09T19:59:00Z",
        "2020-03-09T20:00:00Z",
    )
    assert dates == ["2020-03-06", "2020-03-06", "2020-03-09", "2020-03-09", "2020-03-09", "2020-03-09", "2020-03-10"]
    assert parts == ["pre-market", "regular", "after-hours", "pre-market", "regular", "regular", "after-hours"]


def test_daily_period_runs_from_the_previous_close_to_the_close():
    _, _, described = assign("1D", "2020-07-06T15:00:00Z")
    assert pd.Timestamp(described["period_start"][0], tz="UTC") == pd.Timestamp("2020-07-02T20:00:00Z")
    assert pd.Timestamp(described["period_end"][0], tz="UTC") == pd.Timestamp("2020-07-06T20:00:00Z")


@pytest.mark.parametrize("freq", ["30min", "1h"])
def test_intraday_buckets_never_straddle_the_open_or_close(freq):
    periods = make_periods("nyse", freq)
    first, last = periods.assign(ns("2020-03-05T20:00:00Z", "2020-03-10T21:00:00Z"))[0]
    keys = periods.grid(first, last)
    described = periods.describe(keys)
    start, end = described["period_start"], described["period_end"]
    assert np.all(end > start) and np.all(end[:-1] <= start[1:])  # ordered, no overlaps
    _, opens, closes = periods.sessions, periods.opens, periods.closes
    for boundary in np.r_[opens, closes]:
        assert not np.any((start < boundary) & (end > boundary))
    # Every message time in the range falls in the bucket the grid has for it.
    stamps = np.arange(first, last, 7 * 60 * 1_000_000_000)
    got = periods.assign(stamps)[0]
    assert np.isin(got, keys).all()
    bucket = np.searchsorted(keys, stamps, side="right") - 1
    assert np.array_equal(keys[bucket], got)


def test_intraday_parts_follow_the_bucket():
    dates, parts, described = assign("1h", "2020-07-02T19:45:00Z", "2020-07-02T20:10:00Z", "2020-07-06T13:10:00Z")
    assert parts == ["regular", "after-hours", "pre-market"]
    assert list(described["session"]) == parts
    assert dates == ["2020-07-02", "2020-07-06", "2020-07-06"]
    # The last bucket before the open ends at the open (09:30 EDT), not an hour later.
    assert pd.Timestamp(described["period_end"][2], tz="UTC") == pd.Timestamp("2020-07-06T13:30:00Z")


def test_weekly_periods_group_sessions_by_week():
    dates, _, described = assign("1W", "2020-07-02T15:00:00Z", "2020-07-03T15:00:00Z", "2020-07-10T15:00:00Z")
    assert dates == ["2020-06-29", "2020-07-06", "2020-07-06"]  # the holiday counts for the next week's first session
    assert pd.Timestamp(described["period_end"][1], tz="UTC") == pd.Timestamp("2020-07-10T20:00:00Z")


def test_bare_dates_count_for_that_day_or_the_next_session_in_no_part():
    periods = make_periods("nyse", "1D")
    keys, parts = periods.assign(ns("2020-07-02", "2020-07-04"), np.array([True, True]))
    assert [str(d) for d in periods.describe(keys)["session_date"]] == ["2020-07-02", "2020-07-06"]
    assert list(parts) == [UNKNOWN, UNKNOWN]
    with pytest.raises(StocksentError, match="--freq 1D"):
        make_periods("nyse", "1h").assign(ns("2020-07-02"), np.array([True]))


def test_twenty_four_seven_periods_are_utc_floors():
    periods = make_periods("24x7", "1D")
    keys, _ = periods.assign(ns("2020-07-04T23:59:59Z", "2020-07-05T00:00:00Z"))
    assert list(pd.to_datetime(keys, utc=True)) == [
        pd.Timestamp("2020-07-04", tz="UTC"),
        pd.Timestamp("2020-07-05", tz="UTC"),
    ]
    weekly = make_periods("24x7", "1W").assign(ns("2020-07-05T12:00:00Z", "2020-07-06T00:00:00Z"))[0]
    assert list(pd.to_datetime(weekly, utc=True).day_name()) == ["Monday", "Monday"]
    assert len(periods.grid(keys[0], keys[0] + 3 * 86400 * 10**9)) == 4


def test_unknown_options_and_times_outside_the_calendar_are_user_errors():
    with pytest.raises(StocksentError, match="unknown frequency"):
        make_periods("nyse", "5min")
    with pytest.raises(StocksentError, match="unknown calendar"):
        make_periods("lse", "1D")
    with pytest.raises(StocksentError, match="outside the NYSE calendar"):
        make_periods("nyse", "1D").assign(ns("1999-01-04T15:00:00Z"))


@pytest.mark.parametrize(
    ("calendar", "freq"),
    [("nyse", "30min"), ("nyse", "1h"), ("nyse", "1D"), ("nyse", "1W"), ("24x7", "30min"), ("24x7", "1W")],
)
def test_positions_number_the_periods_one_by_one(calendar, freq):
    periods = make_periods(calendar, freq)
    first, last = periods.assign(ns("2019-12-20T15:00:00Z", "2020-01-10T15:00:00Z"))[0]
    keys = periods.grid(first, last)
    places = periods.position(keys)
    assert np.array_equal(np.diff(places), np.ones(len(keys) - 1))
    assert np.array_equal(periods.key_at(places), keys)
    assert keys[0] == first and keys[-1] == last


def test_near_keeps_the_periods_within_reach_and_counts_what_it_leaves_out():
    periods = make_periods("nyse", "1D")
    keys = periods.assign(ns("2020-01-02T15:00:00Z", "2020-01-06T15:00:00Z", "2020-03-02T15:00:00Z"))[0]
    kept, skipped, row = periods.near(keys, reach=2)
    dates = [str(d) for d in periods.describe(kept)["session_date"]]
    # 2 Jan, 3 Jan, 6 Jan and the two sessions after it; then the two sessions before 2 March and it.
    assert dates == [
        "2020-01-02",
        "2020-01-03",
        "2020-01-06",
        "2020-01-07",
        "2020-01-08",
        "2020-02-27",
        "2020-02-28",
        "2020-03-02",
    ]
    assert list(skipped) == [0, 0, 0, 0, 0, 2, 0, 0]  # left out before 27 Feb: many, shown as the reach
    assert list(row) == [0, -1, 1, -1, -1, -1, -1, 2]  # where each key is; -1: an empty period
    whole = periods.grid(keys[0], keys[-1])
    assert np.isin(kept, whole).all() and len(whole) == 41


def test_near_lays_out_many_tickers_at_once_as_each_alone():
    """The index's rows for thousands of tickers come from one call: each ticker's are what it gets alone."""
    periods = make_periods("24x7", "1h")
    rng = np.random.default_rng(5)
    groups = [np.unique(rng.integers(0, 300, size=rng.integers(1, 25))) * 3_600_000_000_000 for _ in range(40)]
    keys = np.concatenate(groups)
    first = np.concatenate([np.arange(len(g)) == 0 for g in groups])
    for reach in (3, None):
        kept, skipped, row = periods.near(keys, reach, first)
        at = 0
        offsets = np.cumsum([0] + [len(g) for g in groups])
        for g, offset in zip(groups, offsets):
            alone, alone_skipped, alone_row = periods.near(g, reach)
            n = len(alone)
            assert np.array_equal(kept[at : at + n], alone) and np.array_equal(skipped[at : at + n], alone_skipped)
            assert np.array_equal(row[at : at + n], np.where(alone_row >= 0, alone_row + offset, -1))
            at += n
        assert at == len(kept)
    assert len(periods.near(keys[:1], None)[0]) == 1 and len(periods.near(keys[:0], 2)[0]) == 0
