"""`IndexBuilder`: scored messages in, one row of partial sums per ticker × period out, in flat memory.

Streaming in two steps per batch, so that duplicates are never scored:
  `select(frame)`  drops what the index leaves out (no time, no ticker, other tickers, several
                   tickers under `single_ticker_only`, an id already seen) and returns the rest;
  `add(frame)`     takes those rows with `p_bullish` added, counts each message once for every
                   ticker it names, and adds per (ticker, period) sums.
`per_period()` returns the sums of the periods with messages; `period_rows(sums, freq, reach)` lays
them out with the empty periods within `reach` periods of one (all periods from each ticker's
first to its last where `reach` is None), and `skipped_before`: how many empty periods were left
out just before each row (at most `reach`), so trailing windows can be computed as if they were
there. Memory: the sums (tickers ×
periods, independent of the number of messages) plus two `SeenSet`s (message ids; (ticker,
period, user) for distinct users) capped at `max_resident_keys` keys each, the rest spilled to a
temporary directory.

The steps that keep no state are functions, so that the Spark index (`stocksent.spark`) runs the
same code on its executors: `wanted` (the ticker filters), `message_rows` (per message and ticker
it names: its period, its part of the day, and what it adds to each sum) and `period_rows` (each
ticker's sums laid out on its periods, the empty ones near busy ones included). What differs is
what needs state: here `SeenSet`s and pandas sums, there Spark's de-duplication and aggregates.

>>> builder = IndexBuilder(freq="1D")                                        # doctest: +SKIP
>>> for frame in frames:                                                    # doctest: +SKIP
...     kept = builder.select(frame)
...     kept["p_bullish"] = model.predict_proba(kept["text"].tolist())
...     builder.add(kept)
>>> rows = period_rows(builder.per_period(), "1D", reach=20)                  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import Counter
from itertools import chain
from typing import Any

import numpy as np

from stocksent.labels import is_bullish
from stocksent.signals.periods import NS_DAY, PARTS, make_periods
from stocksent.signals.quantify import P_BINS, bin_of
from stocksent.signals.seen import SeenSet

__all__ = ["IndexBuilder", "SUMS", "HISTOGRAM", "calendar_of", "wanted", "message_rows", "period_rows"]

log = logging.getLogger(__name__)

PART_COLUMNS = tuple(f"n_{part.replace('-', '_')}" for part in PARTS)  # n_pre_market, n_regular, ...
SUMS = (
    "n_msgs",
    "sum_p",
    "sum_p2",
    "n_bull",
    "n_neutral",
    "n_over",
    "n_tagged_bull",
    "n_tagged_bear",
    "n_users",
    "n_with_user",
    "n_multi",
    *PART_COLUMNS,
)
# Per-period histogram of P(bullish), for EM (signals.quantify): messages and their sum of p per bin.
HISTOGRAM = tuple(f"hist_n_{i}" for i in range(P_BINS)) + tuple(f"hist_p_{i}" for i in range(P_BINS))
_COMBINE_EVERY = 16  # partial-sum frames kept before they are summed into one


def calendar_of(ticker: str, calendar: str) -> str:
    """`auto`: crypto (`BTC.X`, StockTwits' suffix) trades 24x7, everything else on NYSE sessions."""
    if calendar != "auto":
        return calendar
    return "24x7" if ticker.endswith(".X") else "nyse"


def _explode(frame) -> tuple[np.ndarray, np.ndarray]:
    """(row of the message, ticker) for every ticker every message names."""
    counts = frame["n_symbols"].to_numpy()
    parent = np.repeat(np.arange(len(frame)), counts)
    ticker = np.fromiter(chain.from_iterable(frame["tickers"]), dtype=object, count=int(counts.sum()))
    return parent, ticker


def _among(ticker: np.ndarray, tickers: set[str]) -> np.ndarray:
    import pandas as pd

    return pd.Series(ticker, dtype=object).isin(list(tickers)).to_numpy()


def wanted(frame, tickers: set[str] | None = None, single_ticker_only: bool = False, counts: Counter | None = None):
    """Which rows of a normalised frame (`inputs.normalise`) the filters keep: with
    `single_ticker_only`, messages naming one ticker; with `tickers`, messages naming one of them.
    What each filter drops is added to `counts`."""
    counts = Counter() if counts is None else counts
    keep = np.ones(len(frame), dtype=bool)
    if single_ticker_only:
        multi = frame["n_symbols"].to_numpy() > 1
        counts["dropped: several tickers (--single-ticker-only)"] += int(multi.sum())
        keep &= ~multi
    if tickers is not None:
        parent, ticker = _explode(frame)
        named = np.bincount(parent[_among(ticker, tickers)], minlength=len(frame)) > 0
        counts["dropped: other tickers"] += int((keep & ~named).sum())
        keep &= named
    return keep


def message_rows(
    frame,
    *,
    freq: str,
    calendar: str = "auto",
    threshold: float = 0.5,
    tickers: set[str] | None = None,
    neutral: tuple[float, float] | None = None,
    histogram: bool = False,
):
    """One row per message (of a frame with `p_bullish`) and ticker it names, `tickers` only if given.

    Columns: message (its row in `frame`), calendar, ticker, key (the period), part (code into
    PARTS, -1 for a bare date), p, bull, neutral, over (p >= threshold), tag (1/0/-1), multi
    (names several tickers), has_user, user, and with `histogram` bin (of p, for EM). Bullish is
    p >= the band's top with a `neutral` band, else the `label` column where a message has one,
    else p >= threshold.
    """
    import pandas as pd

    parent, ticker = _explode(frame)
    if tickers is not None:
        keep = _among(ticker, tickers)
        parent, ticker = parent[keep], ticker[keep]
    p = frame["p_bullish"].to_numpy(dtype=np.float64)[parent]
    over = is_bullish(p, threshold)
    undecided = np.zeros(len(p), dtype=bool)
    if neutral is not None:
        bull = p >= neutral[1]
        undecided = (p >= neutral[0]) & ~bull
    elif "label" in frame:
        label = frame["label"].to_numpy(dtype=object)[parent]
        bull = np.where(pd.notna(label), label == "bullish", over)
    else:
        bull = over
    codes, names = pd.factorize(pd.Series(ticker, dtype=object))
    calendars = np.array([calendar_of(t, calendar) for t in names], dtype=object)[codes]
    ts = frame["ts"].to_numpy()[parent]
    date_only = frame["date_only"].to_numpy()[parent]
    key = np.zeros(len(ticker), dtype=np.int64)
    part = np.zeros(len(ticker), dtype=np.int8)
    for name in np.unique(calendars):
        rows = calendars == name
        key[rows], part[rows] = make_periods(name, freq).assign(ts[rows], date_only[rows])
    rows = pd.DataFrame(
        {
            "message": parent,
            "calendar": calendars,
            "ticker": ticker,
            "key": key,
            "part": part,
            "p": p,
            "bull": np.asarray(bull, dtype=bool),
            "neutral": undecided,
            "over": over,
            "tag": frame["tag"].to_numpy()[parent].astype(np.int8),
            "multi": frame["n_symbols"].to_numpy()[parent] > 1,
            "has_user": frame["has_user"].to_numpy()[parent],
            "user": frame["user"].to_numpy()[parent],
        }
    )
    if histogram:
        rows["bin"] = bin_of(p).astype(np.int8)
    return rows


def _sums(rows, new_user: np.ndarray, histogram: bool):
    """Per (calendar, ticker, key) sums of `message_rows`; `new_user` marks each author's first row there."""
    import pandas as pd

    p = rows["p"].to_numpy()
    columns = {
        "calendar": rows["calendar"].to_numpy(),
        "ticker": rows["ticker"].to_numpy(),
        "key": rows["key"].to_numpy(),
        "n_msgs": np.ones(len(rows), dtype=np.int64),
        "sum_p": p,
        "sum_p2": p * p,
        "n_bull": rows["bull"].to_numpy(np.int64),
        "n_neutral": rows["neutral"].to_numpy(np.int64),
        "n_over": rows["over"].to_numpy(np.int64),
        "n_tagged_bull": (rows["tag"].to_numpy() == 1).astype(np.int64),
        "n_tagged_bear": (rows["tag"].to_numpy() == 0).astype(np.int64),
        "n_users": new_user.astype(np.int64),
        "n_with_user": rows["has_user"].to_numpy(np.int64),
        "n_multi": rows["multi"].to_numpy(np.int64),
    }
    part = rows["part"].to_numpy()
    for code, name in enumerate(PART_COLUMNS):
        columns[name] = (part == code).astype(np.int64)
    if histogram:
        bins = rows["bin"].to_numpy()
        for i in range(P_BINS):
            here = bins == i
            columns[f"hist_n_{i}"] = here.astype(np.int64)
            columns[f"hist_p_{i}"] = np.where(here, p, 0.0)
    return pd.DataFrame(columns).groupby(["calendar", "ticker", "key"], sort=False).sum()


def period_rows(sums, freq: str, reach: int | None = None, empty: dict[str, Any] | None = None):
    """Per-period sums laid out as the index's rows: for each (calendar, ticker), its periods with
    messages and the empty ones within `reach` of one (all from its first to its last if None).

    `sums`: a flat frame with calendar, ticker, key and sum columns (one row per busy period), in
    any order. Returns ticker, calendar, period_start, period_end (UTC), session_date, session,
    skipped_before (empty periods left out just before the row, at most `reach`) and the sums (0 in
    empty periods, or the column's value in `empty`), sorted by ticker, calendar and period. `n_users` is null for a ticker whose
    messages carry no user, the parts of the day for 24x7 tickers. All tickers at once: the rows
    are laid out per calendar, put in order, and every sum column gathered once.
    """
    import pandas as pd

    names = [c for c in sums.columns if c not in ("calendar", "ticker", "key")]
    sums = sums.reset_index(drop=True)
    codes, tickers = pd.factorize(sums["ticker"].to_numpy(dtype=object), sort=True)
    calendars = sums["calendar"].to_numpy(dtype=object)
    keys = sums["key"].to_numpy(dtype=np.int64)
    with_user = np.bincount(codes, weights=sums["n_with_user"].to_numpy(), minlength=len(tickers))
    pieces = []
    for calendar in sorted(set(calendars)):  # at most two: nyse and 24x7
        rows = np.flatnonzero(calendars == calendar)
        rows = rows[np.lexsort((keys[rows], codes[rows]))]
        code = codes[rows]
        periods = make_periods(calendar, freq)
        kept, skipped, at = periods.near(keys[rows], reach, np.r_[True, code[1:] != code[:-1]])
        source = rows[np.maximum.accumulate(at)]  # the ticker's busy row at or before each row
        pieces.append((calendar, periods, kept, skipped, np.where(at >= 0, rows[at], -1), source))
    calendar = np.concatenate([np.full(len(piece[2]), piece[0], dtype=object) for piece in pieces])
    source = np.concatenate([piece[5] for piece in pieces])
    order = np.lexsort((np.concatenate([np.full(len(p[2]), i) for i, p in enumerate(pieces)]), codes[source]))
    described = {}
    for piece in pieces:  # describe each calendar's keys, then put them in order with the rest
        for name, values in piece[1].describe(piece[2]).items():
            described.setdefault(name, []).append(values)
    described = {name: np.concatenate(values)[order] for name, values in described.items()}
    row = np.concatenate([piece[4] for piece in pieces])[order]
    calendar, source = calendar[order], source[order]
    busy = row >= 0
    nyse = calendar == "nyse"
    session_date = np.full(len(row), None, dtype=object)
    session_date[nyse] = pd.to_datetime(described["session_date"][nyse]).date
    frame = {
        "ticker": np.asarray(tickers, dtype=object)[codes[source]],
        "calendar": calendar,
        "period_start": pd.to_datetime(described["period_start"], utc=True),
        "period_end": pd.to_datetime(described["period_end"], utc=True),
        "session_date": session_date,
        "session": pd.Series(described["session"], dtype=object),  # None off NYSE, not a missing string
        "skipped_before": np.concatenate([piece[3] for piece in pieces])[order],
    }
    for name in names:
        values = sums[name].to_numpy()
        filled = np.full(len(row), (empty or {}).get(name, 0), dtype=values.dtype)
        filled[busy] = values[row[busy]]
        if name == "n_users":  # users unknown for a ticker: not zero users
            filled = pd.array(filled, dtype="Int64")
            filled[with_user[codes[source]] == 0] = pd.NA
        elif name in PART_COLUMNS:  # no parts of the day off the NYSE calendar
            filled = pd.array(filled, dtype="Int64")
            filled[~nyse] = pd.NA
        frame[name] = filled
    return pd.DataFrame(frame)


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
        neutral: tuple[float, float] | None = None,
        histogram: bool = False,
    ):
        self.options = index_options(freq, calendar, tickers, threshold, neutral, histogram)
        self.freq, self.calendar = freq, calendar
        self.tickers = self.options["tickers"]
        self.single_ticker_only = single_ticker_only
        self.histogram = histogram
        self.sums = SUMS + HISTOGRAM if histogram else SUMS
        self._ids = SeenSet(max_resident_keys, spill_dir)
        self._users = SeenSet(max_resident_keys, spill_dir)
        self._partials: list = []
        self.counts: Counter = Counter()

    # ------------------------------------------------------------------ streaming

    def select(self, frame):
        """The rows of a normalised frame (`inputs.normalise`) that the index counts, not yet counted."""
        self.counts["messages read"] += len(frame)
        keep = wanted(frame, self.tickers, self.single_ticker_only, self.counts)
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
        rows = message_rows(frame, **self.options)
        has_user = rows["has_user"].to_numpy()
        new_user = np.zeros(len(rows), dtype=bool)
        if has_user.any():
            where = np.flatnonzero(has_user)
            triple = pd.DataFrame(
                {
                    "t": rows["ticker"].to_numpy()[where],
                    "k": rows["key"].to_numpy()[where],
                    "u": rows["user"].to_numpy()[where],
                }
            )
            hashes = pd.util.hash_pandas_object(triple, index=False).to_numpy()
            new_user[where] = self._users.add(triple["k"].to_numpy() // NS_DAY, hashes)
        self._partials.append(_sums(rows, new_user, self.histogram))
        self.counts["messages counted"] += len(frame)
        if len(self._partials) >= _COMBINE_EVERY:
            self._partials = [self._combined()]

    def _combined(self):
        import pandas as pd

        if len(self._partials) == 1:
            return self._partials[0]
        return pd.concat(self._partials).groupby(level=["calendar", "ticker", "key"], sort=False).sum()

    # ------------------------------------------------------------------ result

    def per_period(self):
        """The sums of every (calendar, ticker, period) with messages: a flat frame with calendar,
        ticker, key (the period) and the sums, in no order (`period_rows` lays them out)."""
        import pandas as pd

        if not self._partials:
            return pd.DataFrame(columns=["calendar", "ticker", "key", *self.sums])
        sums = self._combined()
        self._partials = [sums]
        return sums.reset_index()

    def log_counts(self) -> None:
        for what, n in sorted(self.counts.items()):
            if n and what.startswith("dropped"):
                log.info("%s: %d", what, n)

    def close(self) -> None:
        self._ids.close()
        self._users.close()


def index_options(
    freq: str = "1D",
    calendar: str = "auto",
    tickers: list[str] | None = None,
    threshold: float = 0.5,
    neutral: tuple[float, float] | None = None,
    histogram: bool = False,
) -> dict[str, Any]:
    """The checked options of `message_rows` (a user's bad calendar, band or frequency is a one-line error)."""
    from stocksent.errors import StocksentError
    from stocksent.signals.periods import freq_ns

    if calendar not in ("auto", "nyse", "24x7"):
        raise StocksentError(f"unknown calendar {calendar!r}: use auto, nyse or 24x7")
    if neutral is not None and not 0.0 <= neutral[0] <= threshold <= neutral[1] <= 1.0:
        raise StocksentError(
            f"the neutral band {neutral[0]:g},{neutral[1]:g} must hold the model's threshold {threshold:.4g} "
            "(low <= threshold <= high, within 0 and 1), so it never turns a label around"
        )
    freq_ns(freq)
    wanted_tickers = {t.strip().lstrip("$").upper() for t in tickers} if tickers else None
    return {
        "freq": freq,
        "calendar": calendar,
        "threshold": threshold,
        "tickers": wanted_tickers,
        "neutral": neutral,
        "histogram": histogram,
    }
