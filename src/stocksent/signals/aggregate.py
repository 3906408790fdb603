"""`IndexBuilder`: scored messages in, one row of partial sums per ticker × period out, in flat memory.

Streaming in two steps per batch, so that duplicates are never scored:
  `select(frame)`  drops what the index leaves out (no time, no ticker, other tickers, several
                   tickers under `single_ticker_only`, an id already seen) and returns the rest;
  `add(frame)`     takes those rows with `p_bullish` added, counts each message once for every
                   ticker it names, and adds per (ticker, period) sums.
`table()` returns the sums of every period from each ticker's first to its last (empty periods
included). Memory: the sums (tickers × periods, independent of the number of messages) plus two
`SeenSet`s (message ids; (ticker, period, user) for distinct users) capped at `max_resident_keys`
keys each, the rest spilled to a temporary directory.

>>> builder = IndexBuilder(freq="1D")                                        # doctest: +SKIP
>>> for frame in frames:                                                    # doctest: +SKIP
...     kept = builder.select(frame)
...     kept["p_bullish"] = model.predict_proba(kept["text"].tolist())
...     builder.add(kept)
>>> sums = builder.table()                                                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import Counter
from itertools import chain

import numpy as np

from stocksent.labels import is_bullish
from stocksent.signals.periods import NS_DAY, PARTS, Periods, make_periods
from stocksent.signals.seen import SeenSet

__all__ = ["IndexBuilder", "SUMS", "calendar_of"]

log = logging.getLogger(__name__)

PART_COLUMNS = tuple(f"n_{part.replace('-', '_')}" for part in PARTS)  # n_pre_market, n_regular, ...
SUMS = (
    "n_msgs",
    "sum_p",
    "n_bull",
    "n_tagged_bull",
    "n_tagged_bear",
    "n_users",
    "n_with_user",
    "n_multi",
    *PART_COLUMNS,
)
_COMBINE_EVERY = 16  # partial-sum frames kept before they are summed into one


def calendar_of(ticker: str, calendar: str) -> str:
    """`auto`: crypto (`BTC.X`, StockTwits' suffix) trades 24x7, everything else on NYSE sessions."""
    if calendar != "auto":
        return calendar
    return "24x7" if ticker.endswith(".X") else "nyse"


class IndexBuilder:
    """Accumulates per-ticker, per-period sums of scored messages; see the module doc."""

    def __init__(
        self,
        freq: str = "1D",
        calendar: str = "auto",
        tickers: list[str] | None = None,
        single_ticker_only: bool = False,
        threshold: float = 0.5,
        max_resident_keys: int = 2_000_000,
        spill_dir: str | None = None,
    ):
        if calendar not in ("auto", "nyse", "24x7"):
            from stocksent.errors import StocksentError

            raise StocksentError(f"unknown calendar {calendar!r}: use auto, nyse or 24x7")
        self.freq, self.calendar = freq, calendar
        self.tickers = {t.strip().lstrip("$").upper() for t in tickers} if tickers else None
        self.single_ticker_only = single_ticker_only
        self.threshold = threshold
        self.periods: dict[str, Periods] = {name: make_periods(name, freq) for name in ("nyse", "24x7")}
        self._ids = SeenSet(max_resident_keys, spill_dir)
        self._users = SeenSet(max_resident_keys, spill_dir)
        self._partials: list = []
        self.counts: Counter = Counter()

    # ------------------------------------------------------------------ streaming

    def select(self, frame):
        """The rows of a normalised frame (`inputs.normalise`) that the index counts, not yet counted."""
        self.counts["messages read"] += len(frame)
        keep = np.ones(len(frame), dtype=bool)
        if self.single_ticker_only:
            multi = frame["n_symbols"].to_numpy() > 1
            self.counts["dropped: several tickers (--single-ticker-only)"] += int(multi.sum())
            keep &= ~multi
        if self.tickers is not None:
            wanted = np.fromiter((not self.tickers.isdisjoint(t) for t in frame["tickers"]), bool, len(frame))
            self.counts["dropped: other tickers"] += int((keep & ~wanted).sum())
            keep &= wanted
        has_key = frame["has_key"].to_numpy() & keep
        if has_key.any():
            rows = np.flatnonzero(has_key)
            buckets = frame["ts"].to_numpy()[rows] // NS_DAY  # a duplicate has the same time: same bucket
            fresh = self._ids.add(buckets, frame["key"].to_numpy()[rows])
            self.counts["dropped: duplicate id"] += int((~fresh).sum())
            keep[rows[~fresh]] = False
        return frame[keep].reset_index(drop=True) if not keep.all() else frame

    def add(self, frame) -> None:
        """Count selected rows that carry `p_bullish` (and optionally `label`)."""
        import pandas as pd

        if not len(frame):
            return
        counts = frame["n_symbols"].to_numpy()
        parent = np.repeat(np.arange(len(frame)), counts)
        ticker = np.fromiter(chain.from_iterable(frame["tickers"]), dtype=object, count=int(counts.sum()))
        if self.tickers is not None:
            wanted = np.fromiter((t in self.tickers for t in ticker), bool, len(ticker))
            parent, ticker = parent[wanted], ticker[wanted]
        p = frame["p_bullish"].to_numpy(dtype=np.float64)[parent]
        if "label" in frame and frame["label"].notna().all():
            bull = (frame["label"].to_numpy() == "bullish")[parent]
        else:
            bull = is_bullish(p, self.threshold)
        tag = frame["tag"].to_numpy()[parent]
        ts = frame["ts"].to_numpy()[parent]
        date_only = frame["date_only"].to_numpy()[parent]
        calendars = np.array([calendar_of(t, self.calendar) for t in ticker], dtype=object)
        key = np.zeros(len(ticker), dtype=np.int64)
        part = np.zeros(len(ticker), dtype=np.int8)
        for name in np.unique(calendars):
            rows = calendars == name
            key[rows], part[rows] = self.periods[name].assign(ts[rows], date_only[rows])
        has_user = frame["has_user"].to_numpy()[parent]
        new_user = np.zeros(len(ticker), dtype=bool)
        if has_user.any():
            rows = np.flatnonzero(has_user)
            triple = pd.DataFrame({"t": ticker[rows], "k": key[rows], "u": frame["user"].to_numpy()[parent][rows]})
            hashes = pd.util.hash_pandas_object(triple, index=False).to_numpy()
            new_user[rows] = self._users.add(key[rows] // NS_DAY, hashes)
        columns = {
            "calendar": calendars,
            "ticker": ticker,
            "key": key,
            "n_msgs": np.ones(len(ticker), dtype=np.int64),
            "sum_p": p,
            "n_bull": bull.astype(np.int64),
            "n_tagged_bull": (tag == 1).astype(np.int64),
            "n_tagged_bear": (tag == 0).astype(np.int64),
            "n_users": new_user.astype(np.int64),
            "n_with_user": has_user.astype(np.int64),
            "n_multi": (counts[parent] > 1).astype(np.int64),
        }
        for code, name in enumerate(PART_COLUMNS):
            columns[name] = (part == code).astype(np.int64)
        sums = pd.DataFrame(columns).groupby(["calendar", "ticker", "key"], sort=False).sum()
        self._partials.append(sums)
        self.counts["messages counted"] += len(frame)
        if len(self._partials) >= _COMBINE_EVERY:
            self._partials = [self._combined()]

    def _combined(self):
        import pandas as pd

        if len(self._partials) == 1:
            return self._partials[0]
        return pd.concat(self._partials).groupby(level=["calendar", "ticker", "key"], sort=False).sum()

    # ------------------------------------------------------------------ result

    def table(self):
        """Sums per (ticker, period) with every period between each ticker's first and last, sorted.

        Columns: ticker, calendar, period_start, period_end (UTC), session_date, session, and SUMS.
        """
        import pandas as pd

        if not self._partials:
            return pd.DataFrame(columns=["ticker", "calendar", "key", *SUMS])
        sums = self._combined()
        self._partials = [sums]
        pieces = []
        order = sorted(sums.index.droplevel("key").unique(), key=lambda pair: (pair[1], pair[0]))  # by ticker
        groups = dict(list(sums.groupby(level=["calendar", "ticker"], sort=False)))
        for calendar, ticker in order:
            group = groups[(calendar, ticker)].droplevel(["calendar", "ticker"]).sort_index()
            periods = self.periods[calendar]
            keys = periods.grid(int(group.index[0]), int(group.index[-1]))
            filled = group.reindex(keys, fill_value=0)
            described = periods.describe(keys)
            frame = pd.DataFrame(
                {
                    "ticker": ticker,
                    "calendar": calendar,
                    "period_start": pd.to_datetime(described["period_start"], utc=True),
                    "period_end": pd.to_datetime(described["period_end"], utc=True),
                    "session_date": pd.to_datetime(described["session_date"]).date
                    if calendar == "nyse"
                    else [None] * len(keys),
                    "session": described["session"],
                }
            )
            for name in SUMS:
                frame[name] = filled[name].to_numpy()
            if filled["n_with_user"].sum() == 0:  # users unknown for this ticker: not zero users
                frame["n_users"] = pd.array([pd.NA] * len(keys), dtype="Int64")
            if calendar != "nyse":
                for name in PART_COLUMNS:
                    frame[name] = pd.array([pd.NA] * len(keys), dtype="Int64")
            pieces.append(frame)
        return pd.concat(pieces, ignore_index=True)

    def log_counts(self) -> None:
        for what, n in sorted(self.counts.items()):
            if n and what.startswith("dropped"):
                log.info("%s: %d", what, n)

    def close(self) -> None:
        self._ids.close()
        self._users.close()
