"""Which period (and which part of the trading day) a message counts for.

Two calendars, each a `Periods` object that maps UTC timestamps (int64 nanoseconds) to integer
period keys, describes keys as rows, and lists every key between two (so empty periods are rows
too, which the volume z-score needs):

- `TwentyFourSeven`: plain UTC periods (crypto trades around the clock): `floor(t, freq)`.
- `NyseSessions`: NYSE sessions from `exchange_calendars` (XNYS: holidays and early closes kept by
  that library, not by a hand-written list). A message counts for the session whose close is the
  first after it: one posted after the close, overnight, on a weekend or a holiday counts for the
  next session, where the market can first react to it. Parts of the day (`session`):
  `pre-market` (the session's own calendar day before the open), `regular` (open <= t < close),
  `after-hours` (after the close of the previous session, on that session's day), `closed`
  (a day with no session: weekend or holiday). Daily periods span (previous close, close];
  intraday periods are clock buckets anchored at the previous close and at the open, so no
  bucket straddles the open or the close.

>>> p = make_periods("nyse", "1D")                                            # doctest: +SKIP
>>> keys, parts = p.assign(np.array([pd.Timestamp("2020-07-02T21:00Z").value]))  # doctest: +SKIP
>>> p.describe(keys)["session_date"][0]                                       # doctest: +SKIP
datetime.date(2020, 7, 6)           # after the close on 2 July; 3 July is a holiday
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from stocksent.errors import StocksentError

__all__ = ["FREQS", "PARTS", "UNKNOWN", "Periods", "TwentyFourSeven", "NyseSessions", "make_periods", "freq_ns"]

NS_MINUTE = 60 * 1_000_000_000
NS_DAY = 24 * 60 * NS_MINUTE
FREQS = {"30min": 30 * NS_MINUTE, "1h": 60 * NS_MINUTE, "1D": NS_DAY, "1W": 7 * NS_DAY}
PARTS = ("pre-market", "regular", "after-hours", "closed")  # codes 0..3
UNKNOWN = -1  # part of a message known only by its date
_MONDAY = 4 * NS_DAY  # 1970-01-05, the first Monday after the epoch: weeks start on Mondays
NEW_YORK = "America/New_York"


def freq_ns(freq: str) -> int:
    try:
        return FREQS[freq]
    except KeyError:
        raise StocksentError(f"unknown frequency {freq!r}: use one of {', '.join(FREQS)}") from None


def _local_days(ts: np.ndarray, tz: str) -> np.ndarray:
    """Calendar day (days since the epoch) of each UTC timestamp in time zone `tz`."""
    import pandas as pd

    local = pd.DatetimeIndex(ts.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(tz).tz_localize(None)
    return local.values.astype("datetime64[D]").astype(np.int64)


class Periods:
    """Interface: `assign` timestamps, `describe` keys, `grid` between keys. Keys are int64 ns."""

    name = ""
    freq = ""

    def assign(self, ts: np.ndarray, date_only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Period key and part of the day (code into PARTS, or UNKNOWN) per UTC timestamp (int64 ns)."""
        raise NotImplementedError

    def describe(self, keys: np.ndarray) -> dict[str, Any]:
        """Columns for the rows of these keys: period_start, period_end (UTC), session_date, session."""
        raise NotImplementedError

    def position(self, keys: np.ndarray) -> np.ndarray:
        """Each key's place (int64) in the calendar's sequence of periods: consecutive periods differ by 1."""
        raise NotImplementedError

    def key_at(self, positions: np.ndarray) -> np.ndarray:
        """The period keys at these places (the inverse of `position`)."""
        raise NotImplementedError

    def grid(self, first: int, last: int) -> np.ndarray:
        """Every period key from `first` to `last`, both included, in order."""
        start, stop = self.position(np.array([first, last], dtype=np.int64))
        return self.key_at(np.arange(start, stop + 1, dtype=np.int64))

    def near(
        self, keys: np.ndarray, reach: int | None, first: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows of an index: per group of `keys`, the periods within `reach` periods of one of its
        keys, never before the group's first key or after its last (every period in between where
        `reach` is None).

        `keys` are sorted and distinct within each group; `first` marks the first key of each group
        (the groups are consecutive runs: tickers), one group if None. Returns, in the same order,
        the periods' keys; per period, how many periods were left out just before it (0 at a group's
        first, at most `reach`); and the index of its key in `keys`, or -1 for an empty period. All
        groups at once: thousands of tickers cost one pass, not one each.

        The index keeps these rows: enough empty periods around each one with messages for a
        trailing window of `reach` periods to be computed exactly (the left-out periods are empty).
        """
        places = self.position(np.asarray(keys, dtype=np.int64))
        n = len(places)
        if not n:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        first = np.arange(n) == 0 if first is None else np.asarray(first, dtype=bool)
        group = np.cumsum(first) - 1
        last_place = places[np.r_[np.flatnonzero(first)[1:] - 1, n - 1]][group]  # the group's last key
        if reach is None:  # one stretch per group, from its first key to its last
            low = np.where(first, places, 0)
            high = np.where(first, last_place, -1)
        else:  # a stretch per key: from where the one before ends (or reach before it) to reach after it
            before = np.r_[places[:1], places[:-1]]
            low = np.where(first, places, np.maximum(places - reach, before + reach + 1))
            high = np.minimum(places + reach, last_place)
        length = np.maximum(high - low + 1, 0)
        stretch = np.repeat(np.arange(n), length)
        kept = low[stretch] + np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
        kept_group = group[stretch]
        starts = np.r_[True, kept_group[1:] != kept_group[:-1]]
        skipped = np.diff(kept, prepend=kept[:1]) - 1
        skipped = np.where(starts, 0, skipped if reach is None else np.minimum(skipped, reach))
        lowest = int(kept.min())  # every key is kept, so this spans them too
        span = int(kept.max()) - lowest + 1
        code = kept_group * span + (kept - lowest)  # sorted: by group, then place
        row = np.full(len(kept), -1, dtype=np.int64)
        row[np.searchsorted(code, group * span + (places - lowest))] = np.arange(n)
        return self.key_at(kept), skipped.astype(np.int64), row


class TwentyFourSeven(Periods):
    """Plain UTC periods; weeks start on Monday 00:00 UTC."""

    name = "24x7"

    def __init__(self, freq: str):
        self.freq, self.step = freq, freq_ns(freq)
        self.origin = _MONDAY if freq == "1W" else 0

    def assign(self, ts, date_only=None):
        ts = np.asarray(ts, dtype=np.int64)
        keys = (ts - self.origin) // self.step * self.step + self.origin
        return keys, np.full(len(ts), UNKNOWN, dtype=np.int8)

    def describe(self, keys):
        keys = np.asarray(keys, dtype=np.int64)
        n = len(keys)
        return {
            "period_start": keys,
            "period_end": keys + self.step,
            "session_date": np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"),
            "session": np.full(n, None, dtype=object),
        }

    def position(self, keys):
        return (np.asarray(keys, dtype=np.int64) - self.origin) // self.step

    def key_at(self, positions):
        return np.asarray(positions, dtype=np.int64) * self.step + self.origin


@functools.lru_cache(maxsize=1)
def _xnys() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NYSE sessions (days since the epoch), opens and closes (UTC ns), from exchange_calendars."""
    try:
        import exchange_calendars as xcals
    except ImportError:
        raise StocksentError(
            "NYSE sessions need exchange_calendars: pip install 'stocksent[index]' (or use --calendar 24x7)"
        ) from None

    calendar = xcals.get_calendar("XNYS")
    sessions = calendar.sessions.values.astype("datetime64[D]").astype(np.int64)
    opens = calendar.opens.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    closes = calendar.closes.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    return sessions, opens, closes


class NyseSessions(Periods):
    """NYSE trading sessions (see the module doc); freq 1D/1W: sessions or weeks of them, else clock buckets."""

    name = "nyse"

    def __init__(self, freq: str):
        self.freq, self.step = freq, freq_ns(freq)
        self.sessions, self.opens, self.closes = _xnys()
        days = self.sessions
        weeks = (days - 4) // 7  # Monday-based weeks (1970-01-05 is day 4)
        first_of_week = np.r_[True, weeks[1:] != weeks[:-1]]
        starts = np.flatnonzero(first_of_week)
        self.week_first = starts[np.cumsum(first_of_week) - 1]  # per session: index of its week's first session
        self.week_last = np.r_[starts[1:] - 1, len(days) - 1][np.cumsum(first_of_week) - 1]

    # ------------------------------------------------------------------ sessions

    def _session_index(self, ts: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.closes, ts, side="right")  # first session whose close is after t
        bad = (idx == 0) | (idx >= len(self.closes))
        if bad.any():
            t = np.datetime64(int(ts[np.flatnonzero(bad)[0]]), "ns")
            first = np.datetime64(int(self.sessions[1]), "D")
            last = np.datetime64(int(self.sessions[-1]), "D")
            raise StocksentError(
                f"a message at {t} is outside the NYSE calendar ({first} to {last}, from exchange_calendars); "
                "check the timestamps or use --calendar 24x7"
            )
        return idx

    def _parts(self, ts: np.ndarray, idx: np.ndarray) -> np.ndarray:
        parts = np.full(len(ts), 3, dtype=np.int8)  # closed, unless below says otherwise
        days = _local_days(ts, NEW_YORK)
        parts[days == self.sessions[idx - 1]] = 2  # after the previous session's close, on its day
        parts[days == self.sessions[idx]] = 0  # the session's own day, before the open
        parts[ts >= self.opens[idx]] = 1
        return parts

    def assign(self, ts, date_only=None):
        ts = np.asarray(ts, dtype=np.int64)
        if date_only is not None and date_only.any():
            if self.step < NS_DAY:
                raise StocksentError(
                    f"some messages have a date but no time; intraday periods need times: use --freq 1D or 1W "
                    f"instead of {self.freq}"
                )
            # A bare date is that New York day: its session if it has one, else the next.
            ts = ts.copy()
            ts[date_only] = _new_york_midnight(ts[date_only])
        idx = self._session_index(ts)
        parts = self._parts(ts, idx)
        if date_only is not None:
            parts[date_only] = UNKNOWN
        if self.freq == "1D":
            keys = self.sessions[idx] * NS_DAY
        elif self.freq == "1W":
            keys = self.sessions[self.week_first[idx]] * NS_DAY
        else:
            anchor = np.where(ts >= self.opens[idx], self.opens[idx], self.closes[idx - 1])
            keys = anchor + (ts - anchor) // self.step * self.step
        return keys, parts

    def describe(self, keys):
        keys = np.asarray(keys, dtype=np.int64)
        if self.step >= NS_DAY:
            idx = np.searchsorted(self.sessions, keys // NS_DAY)
            last = idx if self.freq == "1D" else self.week_last[idx]
            session = np.full(len(keys), "day" if self.freq == "1D" else "week", dtype=object)
            return {
                "period_start": self.closes[idx - 1],
                "period_end": self.closes[last],
                "session_date": self.sessions[idx].astype("datetime64[D]"),
                "session": session,
            }
        idx = np.searchsorted(self.closes, keys, side="right")
        opens, closes = self.opens[idx], self.closes[idx]
        end = np.minimum(keys + self.step, np.where(keys < opens, opens, closes))
        return {
            "period_start": keys,
            "period_end": end,
            "session_date": self.sessions[idx].astype("datetime64[D]"),
            "session": np.array(PARTS, dtype=object)[self._parts(keys, idx)],
        }

    @functools.cached_property
    def _day_keys(self) -> np.ndarray:
        """Daily or weekly periods: the key of each, in order."""
        days = self.sessions * NS_DAY
        return days[np.unique(self.week_first)] if self.freq == "1W" else days

    @functools.cached_property
    def _buckets(self) -> tuple[np.ndarray, np.ndarray]:
        """Intraday periods: per session (from the second), buckets before the open, and the first bucket's place."""
        before = -((self.closes[:-1] - self.opens[1:]) // self.step)  # ceil((open - previous close) / step)
        during = -((self.opens[1:] - self.closes[1:]) // self.step)
        return before, np.concatenate([[0], np.cumsum(before + during)])

    def position(self, keys):
        keys = np.asarray(keys, dtype=np.int64)
        if self.step >= NS_DAY:
            return np.searchsorted(self._day_keys, keys).astype(np.int64)
        before, first = self._buckets
        s = np.searchsorted(self.closes, keys, side="right")  # the session each bucket counts for
        opens = self.opens[s]
        inside = np.where(
            keys < opens, (keys - self.closes[s - 1]) // self.step, before[s - 1] + (keys - opens) // self.step
        )
        return first[s - 1] + inside

    def key_at(self, positions):
        positions = np.asarray(positions, dtype=np.int64)
        if self.step >= NS_DAY:
            return self._day_keys[positions]
        before, first = self._buckets
        s = np.searchsorted(first, positions, side="right")  # 1-based session of each place
        inside = positions - first[s - 1]
        overnight = inside < before[s - 1]
        return np.where(
            overnight,
            self.closes[s - 1] + inside * self.step,
            self.opens[s] + (inside - before[s - 1]) * self.step,
        )


def _new_york_midnight(ts: np.ndarray) -> np.ndarray:
    """00:00 New York time on the UTC calendar day of each timestamp (a bare date parsed as UTC midnight)."""
    import pandas as pd

    days = pd.DatetimeIndex(ts.astype("datetime64[ns]")).normalize()
    return days.tz_localize(NEW_YORK).tz_convert("UTC").tz_localize(None).values.astype(np.int64)


@functools.lru_cache(maxsize=16)
def make_periods(calendar: str, freq: str) -> Periods:
    """`nyse` or `24x7` periods of `freq` (30min, 1h, 1D, 1W); made once per process and shared."""
    freq_ns(freq)
    if calendar == "nyse":
        return NyseSessions(freq)
    if calendar == "24x7":
        return TwentyFourSeven(freq)
    raise StocksentError(f"unknown calendar {calendar!r}: use nyse or 24x7")
