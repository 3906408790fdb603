"""`sentiment_index`: messages in, a tidy ticker × period table of volume and sentiment out.

Columns (one row per ticker and period: the periods with messages, and the empty periods within
`window` periods of one, so that a silence shows and every trailing window is exact; `fill=True`
gives every period from the ticker's first to its last):

  ticker, calendar            the ticker; `nyse` sessions or `24x7` UTC periods
  period_start, period_end    UTC, half-open [start, end); NYSE days run from the previous close
  session_date, session       NYSE only: the session a period counts for; the part of the day
                              (pre-market, regular, after-hours, closed) or `day`/`week`
  n_msgs, n_users, n_multi    messages (each counted for every ticker it names), distinct authors
                              (null where no user ids are known), messages naming other tickers too
  mean_p                      mean P(bullish) from the model
  n_bull, n_bear              messages the model labels bullish / bearish (its threshold)
  n_neutral                   messages inside the `neutral` band (0 without one); bullish and
                              bearish are then p >= high and p < low
  share_bull, ci_lo, ci_hi    n_bull / (n_bull + n_bear) with a Wilson 95% interval
  share_bull_acc, acc_lo,     the share corrected for prior shift (signals.quantify), where the
  acc_hi, acc_clipped, and    model has validation rates (rates.json): adjusted classify-and-count,
  the same for _pacc, _em,    its probabilistic version, EM; `_adj` is the one the index recommends
  _adj                        (ADJUSTED). Over every message, neutral band or not.
  bullishness, agreement      Antweiler–Frank (2004) from the model's counts
  n_tagged_bull/_bear,        the authors' own tags, apart from the model's (share over tagged
  share_tagged_bull           messages only)
  n_pre_market, n_regular,    NYSE only: messages by part of the day (a bare date is in none)
  n_after_hours, n_closed
  z_sentiment, z_volume       share_bull and log(1 + n_msgs) against the `window` periods before
                              (never the period itself or later ones, empty periods counted
                              whether they are rows or not); null until `min_periods`
  model_id                    `NAME-SHA12`: the model directory's name and its weights' sha256 prefix,
                              the id `serve`, `score` and `report` show (`artifacts.model_id`)

>>> df = sentiment_index(["messages.jsonl"], model="runs/demo", freq="1D")  # doctest: +SKIP
>>> df[df.ticker == "AAPL"][["session_date", "n_msgs", "share_bull", "z_sentiment"]].tail(1)  # doctest: +SKIP
     session_date  n_msgs  share_bull  z_sentiment
251    2020-12-31      41    0.634146     0.512821
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from stocksent.errors import StocksentError
from stocksent.rates import ValidationRates
from stocksent.signals.aggregate import PART_COLUMNS, IndexBuilder
from stocksent.signals.inputs import iter_messages, normalise
from stocksent.signals.stats import agreement, bullishness, trailing_zscore, wilson_interval

__all__ = [
    "sentiment_index",
    "index_table",
    "finish",
    "checked_min_periods",
    "model_settings",
    "COLUMNS",
    "CORRECTED",
    "ADJUSTED",
]

log = logging.getLogger(__name__)

COLUMNS = (
    "ticker",
    "calendar",
    "period_start",
    "period_end",
    "session_date",
    "session",
    "n_msgs",
    "n_users",
    "n_multi",
    "mean_p",
    "n_bull",
    "n_bear",
    "n_neutral",
    "share_bull",
    "ci_lo",
    "ci_hi",
    "bullishness",
    "agreement",
    "n_tagged_bull",
    "n_tagged_bear",
    "share_tagged_bull",
    *PART_COLUMNS,
    "z_sentiment",
    "z_volume",
    "model_id",
)
ADJUSTED = "em"  # the estimator behind share_bull_adj: see docs/index-levels.md for the validation behind it
# Where the model has validation rates, these follow ci_hi.
CORRECTED = tuple(
    column
    for name in ("acc", "pacc", "em", "adj")
    for column in (f"share_bull_{name}", f"{name}_lo", f"{name}_hi", f"{name}_clipped")
)


def _scorer(model: Any):
    """(predict_proba(texts) -> array, threshold, model id, model directory) for a directory or a loaded model."""
    if model is None:
        return None, 0.5, None, None
    if isinstance(model, (str, os.PathLike)):
        from stocksent.batch.scorer import BatchScorer

        scorer = BatchScorer(model, precision="float32")
        loaded = scorer.model
        return scorer.predict_proba, float(loaded.threshold), loaded.model_id, Path(model)
    directory = getattr(model, "directory", None)
    name = getattr(model, "model_id", None) or type(model).__name__
    return model.predict_proba, float(getattr(model, "threshold", 0.5)), name, directory


def _rates_of(directory, threshold: float) -> ValidationRates | None:
    """The model's validation rates, or None with a one-line note (models trained before rates.json)."""
    from stocksent.rates import RATES, read_rates

    rates = read_rates(directory, threshold) if directory is not None else None
    if rates is None:
        where = f"{directory} has no {RATES}" if directory is not None else "the model has no directory"
        log.warning(
            f"{where} (its validation rates, written by train since they were added): no prior-shift-"
            "corrected shares; train the model again to get them"
        )
    return rates


def checked_min_periods(window: int, min_periods: int | None) -> int:
    """`min_periods` (default half the window, at least 2), or a one-line error for a window or minimum that cannot work."""
    if window < 2:
        raise StocksentError("window must be at least 2 periods (a z-score needs a spread)")
    min_periods = max(2, window // 2) if min_periods is None else min_periods
    if not 2 <= min_periods <= window:
        raise StocksentError(f"min_periods must be between 2 and the window ({window}), got {min_periods}")
    return min_periods


def model_settings(model: Any, rates: ValidationRates | None = None):
    """What an index takes from its model: (predict_proba or None, threshold, model id or None, rates or None).

    The rates come from the model's rates.json unless given; where there are rates, their threshold
    is the one the corrected shares were measured at, so the index counts at it too.
    """
    predict, threshold, found_id, directory = _scorer(model)
    if rates is None and model is not None:
        rates = _rates_of(directory, threshold)
    if rates is not None:
        threshold = rates.threshold
    return predict, threshold, found_id, rates


def sentiment_index(
    inputs: Any,
    model: Any = None,
    *,
    freq: str = "1D",
    calendar: str = "auto",
    tickers: list[str] | None = None,
    window: int = 20,
    min_periods: int | None = None,
    single_ticker_only: bool = False,
    text_column: str | None = None,
    batch_rows: int = 65536,
    max_resident_keys: int = 2_000_000,
    model_id: str | None = None,
    neutral: tuple[float, float] | None = None,
    fill: bool = False,
    rates: ValidationRates | None = None,
):
    """The sentiment index of `inputs` as a pandas DataFrame (columns: see the module doc).

    `inputs`: files (anything `stocksent score` reads), a pandas DataFrame / pyarrow table, or an
    iterable of them. `model`: a model directory or a loaded `SentimentModel`; may be None when
    the input already has a `p_bullish` column (the output of `stocksent score`). `calendar`:
    `auto` (NYSE sessions, 24x7 for `.X` crypto symbols), `nyse` or `24x7`. `freq`: 30min, 1h,
    1D or 1W. `neutral=(low, high)`: messages with low <= p < high count as neutral. `fill`: a
    row for every empty period, not only those within `window` periods of one with messages.
    `rates`: validation rates for the corrected shares, where the input was scored beforehand
    (otherwise they come from the model's rates.json). Memory stays flat in the number of
    messages (see `IndexBuilder`).
    """
    min_periods = checked_min_periods(window, min_periods)
    predict, threshold, found_id, rates = model_settings(model, rates)
    builder = IndexBuilder(
        freq=freq,
        calendar=calendar,
        tickers=tickers,
        single_ticker_only=single_ticker_only,
        threshold=threshold,
        max_resident_keys=max_resident_keys,
        neutral=neutral,
        histogram=rates is not None,
    )
    bad_rows: list = []
    first_bad = None
    try:
        for batch in iter_messages(inputs, text_column, batch_rows, on_bad_row=bad_rows.append):
            frame, dropped = normalise(batch, text_column, need_text=predict is not None)
            for what, n in dropped.items():
                builder.counts[f"dropped: {what}"] += n
            frame = builder.select(frame)
            if predict is not None:
                frame["p_bullish"] = predict(frame["text"].tolist()) if len(frame) else np.empty(0)
                frame = frame.drop(columns=[c for c in ("label", "text") if c in frame])
            elif "p_bullish" not in frame:
                raise StocksentError("the messages have no p_bullish column: pass a model (--model DIR) to score them")
            no_words = np.isnan(frame["p_bullish"].to_numpy(dtype=np.float64))  # no evidence: no label
            if no_words.any():
                builder.counts["dropped: no words to score"] += int(no_words.sum())
                frame = frame[~no_words].reset_index(drop=True)
            builder.add(frame)
            if len(bad_rows) > 1000:  # keep the count, not the rows
                first_bad = first_bad or bad_rows[0]
                builder.counts["dropped: unreadable rows"] += len(bad_rows)
                bad_rows.clear()
        first_bad = first_bad or (bad_rows[0] if bad_rows else None)
        builder.counts["dropped: unreadable rows"] += len(bad_rows)
        unreadable = builder.counts["dropped: unreadable rows"]
        if first_bad is not None:
            log.warning("first unreadable row: %s", first_bad)
        builder.log_counts()
        sums = builder.per_period()
    finally:
        builder.close()
    if not len(sums):
        unread = f"; {unreadable} unreadable rows, the first: {first_bad}" if unreadable else ""
        raise StocksentError(
            "no messages left to index (check the ticker filter, the time and ticker columns, and the bad-row log"
            f"{unread})"
        )
    name = model_id or found_id or "input p_bullish"
    df = index_table(sums, freq=freq, window=window, min_periods=min_periods, fill=fill, model_id=name, rates=rates)
    log.info(
        "indexed %d messages into %d rows (%d tickers)",
        builder.counts["messages counted"],
        len(df),
        df["ticker"].nunique(),
    )
    return df


def index_table(
    sums,
    *,
    freq: str,
    window: int,
    min_periods: int,
    fill: bool,
    model_id: str,
    rates: ValidationRates | None = None,
):
    """The index from the sums of the periods with messages (`IndexBuilder.per_period()`; the Spark
    index's aggregate, a bucket of tickers at a time): corrected shares per busy period, the rows
    laid out on the calendar (`period_rows`: empty periods within `window`, or all with `fill`),
    then the statistics and z-scores (`finish`)."""
    from stocksent.signals.aggregate import period_rows

    empty: dict[str, Any] = {}
    if rates is not None:
        sums = _with_corrected(sums, rates)
        empty = {name: False if name.endswith("_clipped") else np.nan for name in CORRECTED}
    rows = period_rows(sums, freq, None if fill else window, empty)
    return finish(rows, window, min_periods, model_id, corrected=rates is not None)


def _trailing_with_gaps(
    values: np.ndarray, skipped: np.ndarray, first: np.ndarray, fill_value: float, window: int, min_periods: int
):
    """`trailing_zscore` of rows that leave out `skipped` empty periods before each (at most `window`),
    per group (`first` marks each group's first row; rows in period order within it).

    The left-out periods are put back as `fill_value` (0 volume; no share), `window` missing values
    go between groups so no window reaches into the group before, the z-scores are taken in one
    pass over every group, and only the rows' own values kept: the same numbers as on every period.
    """
    import pandas as pd

    pad = np.where(first, window, np.minimum(skipped, window))
    places = np.arange(len(values)) + np.cumsum(pad)
    padded = np.full(len(values) + int(pad.sum()), fill_value, dtype=np.float64)
    starts = places[first]
    padded[(starts[:, None] - np.arange(1, window + 1)[None, :]).ravel()] = np.nan
    padded[places] = values
    return trailing_zscore(pd.Series(padded), window, min_periods).to_numpy()[places]


def finish(sums, window: int, min_periods: int, model_id: str, corrected: bool = False):
    """The statistics of the index from per-period sums laid out on the calendar (`period_rows`);
    `corrected`: the sums carry the corrected shares (`index_table` adds them)."""
    df = sums.copy()
    n = df["n_msgs"].to_numpy(dtype=np.float64)
    bull = df["n_bull"].to_numpy(dtype=np.float64)
    df["n_bear"] = df["n_msgs"] - df["n_bull"] - df["n_neutral"]
    decided = bull + df["n_bear"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        df["mean_p"] = np.where(n > 0, df["sum_p"].to_numpy() / n, np.nan)
        df["share_bull"] = np.where(decided > 0, bull / decided, np.nan)
        tagged = (df["n_tagged_bull"] + df["n_tagged_bear"]).to_numpy(dtype=np.float64)
        df["share_tagged_bull"] = np.where(tagged > 0, df["n_tagged_bull"].to_numpy() / tagged, np.nan)
    df["ci_lo"], df["ci_hi"] = wilson_interval(bull, decided)
    df["bullishness"] = bullishness(bull, df["n_bear"].to_numpy())
    df["agreement"] = agreement(bull, df["n_bear"].to_numpy())
    share = df["share_bull"].to_numpy(dtype=np.float64)
    skipped = df["skipped_before"].to_numpy(dtype=np.int64)
    ticker, calendar = df["ticker"].to_numpy(dtype=object), df["calendar"].to_numpy(dtype=object)
    first = np.r_[True, (ticker[1:] != ticker[:-1]) | (calendar[1:] != calendar[:-1])]  # rows are in period order
    z_s = _trailing_with_gaps(share, skipped, first, np.nan, window, min_periods)
    z_v = _trailing_with_gaps(np.log1p(n), skipped, first, 0.0, window, min_periods)
    df["z_sentiment"], df["z_volume"] = z_s, z_v
    df["model_id"] = model_id
    columns = list(COLUMNS)
    if corrected:
        at = columns.index("ci_hi") + 1
        columns[at:at] = CORRECTED
    return df[columns]


def _with_corrected(sums, rates: ValidationRates):
    """Busy periods' sums with share_bull_acc/_pacc/_em/_adj, their intervals and clipping flags
    (signals.quantify) in place of the histogram, which only EM reads."""
    from stocksent.signals.aggregate import HISTOGRAM
    from stocksent.signals.quantify import P_BINS, acc, em, pacc

    n = sums["n_msgs"].to_numpy(dtype=np.float64)
    estimates = {
        "acc": acc(sums["n_over"].to_numpy(), n, rates),
        "pacc": pacc(sums["sum_p"].to_numpy(), sums["sum_p2"].to_numpy(), n, rates),
        "em": em(
            sums[list(HISTOGRAM[:P_BINS])].to_numpy(dtype=np.float64),
            sums[list(HISTOGRAM[P_BINS:])].to_numpy(dtype=np.float64),
            rates,
        ),
    }
    estimates["adj"] = estimates[ADJUSTED]
    out = sums.drop(columns=list(HISTOGRAM))
    for name, estimate in estimates.items():
        out[f"share_bull_{name}"] = estimate.share
        out[f"{name}_lo"] = estimate.lo
        out[f"{name}_hi"] = estimate.hi
        out[f"{name}_clipped"] = estimate.clipped
    return out
