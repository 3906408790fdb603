"""`sentiment_index`: messages in, a tidy ticker × period table of volume and sentiment out.

Columns (one row per ticker and period, every period from the ticker's first to its last):

  ticker, calendar            the ticker; `nyse` sessions or `24x7` UTC periods
  period_start, period_end    UTC, half-open [start, end); NYSE days run from the previous close
  session_date, session       NYSE only: the session a period counts for; the part of the day
                              (pre-market, regular, after-hours, closed) or `day`/`week`
  n_msgs, n_users, n_multi    messages (each counted for every ticker it names), distinct authors
                              (null where no user ids are known), messages naming other tickers too
  mean_p                      mean P(bullish) from the model
  n_bull, n_bear              messages the model labels bullish / bearish (its threshold)
  share_bull, ci_lo, ci_hi    n_bull / n_msgs with a Wilson 95% interval
  bullishness, agreement      Antweiler–Frank (2004) from the model's counts
  n_tagged_bull/_bear,        the authors' own tags, apart from the model's (share over tagged
  share_tagged_bull           messages only)
  n_pre_market, n_regular,    NYSE only: messages by part of the day (a bare date is in none)
  n_after_hours, n_closed
  z_sentiment, z_volume       share_bull and log(1 + n_msgs) against the `window` periods before
                              (never the period itself or later ones); null until `min_periods`
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
from typing import Any

import numpy as np

from stocksent.errors import StocksentError
from stocksent.signals.aggregate import PART_COLUMNS, IndexBuilder
from stocksent.signals.inputs import iter_messages, normalise
from stocksent.signals.stats import agreement, bullishness, trailing_zscore, wilson_interval

__all__ = ["sentiment_index", "finish", "COLUMNS"]

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


def _scorer(model: Any):
    """(predict_proba(texts) -> array, threshold, model id) for a model directory or a loaded model."""
    if model is None:
        return None, 0.5, None
    if isinstance(model, (str, os.PathLike)):
        from stocksent.batch.scorer import BatchScorer

        scorer = BatchScorer(model, precision="float32")
        loaded = scorer.model
        return scorer.predict_proba, float(loaded.threshold), loaded.model_id
    name = getattr(model, "model_id", None) or type(model).__name__
    return model.predict_proba, float(getattr(model, "threshold", 0.5)), name


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
):
    """The sentiment index of `inputs` as a pandas DataFrame (columns: see the module doc).

    `inputs`: files (anything `stocksent score` reads), a pandas DataFrame / pyarrow table, or an
    iterable of them. `model`: a model directory or a loaded `SentimentModel`; may be None when
    the input already has a `p_bullish` column (the output of `stocksent score`). `calendar`:
    `auto` (NYSE sessions, 24x7 for `.X` crypto symbols), `nyse` or `24x7`. `freq`: 30min, 1h,
    1D or 1W. Memory stays flat in the number of messages (see `IndexBuilder`).
    """
    if window < 2:
        raise StocksentError("window must be at least 2 periods (a z-score needs a spread)")
    min_periods = max(2, window // 2) if min_periods is None else min_periods
    if not 2 <= min_periods <= window:
        raise StocksentError(f"min_periods must be between 2 and the window ({window}), got {min_periods}")
    predict, threshold, found_id = _scorer(model)
    builder = IndexBuilder(
        freq=freq,
        calendar=calendar,
        tickers=tickers,
        single_ticker_only=single_ticker_only,
        threshold=threshold,
        max_resident_keys=max_resident_keys,
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
        sums = builder.table()
    finally:
        builder.close()
    if not len(sums):
        unread = f"; {unreadable} unreadable rows, the first: {first_bad}" if unreadable else ""
        raise StocksentError(
            "no messages left to index (check the ticker filter, the time and ticker columns, and the bad-row log"
            f"{unread})"
        )
    log.info(
        "indexed %d messages into %d rows (%d tickers)",
        builder.counts["messages counted"],
        len(sums),
        sums["ticker"].nunique(),
    )
    return finish(sums, window, min_periods, model_id or found_id or "input p_bullish")


def finish(sums, window: int, min_periods: int, model_id: str):
    """The statistics of the index from per-period sums (`IndexBuilder.table()`)."""
    import pandas as pd

    df = sums.copy()
    n = df["n_msgs"].to_numpy(dtype=np.float64)
    bull = df["n_bull"].to_numpy(dtype=np.float64)
    df["n_bear"] = df["n_msgs"] - df["n_bull"]
    with np.errstate(invalid="ignore", divide="ignore"):
        df["mean_p"] = np.where(n > 0, df["sum_p"].to_numpy() / n, np.nan)
        df["share_bull"] = np.where(n > 0, bull / n, np.nan)
        tagged = (df["n_tagged_bull"] + df["n_tagged_bear"]).to_numpy(dtype=np.float64)
        df["share_tagged_bull"] = np.where(tagged > 0, df["n_tagged_bull"].to_numpy() / tagged, np.nan)
    df["ci_lo"], df["ci_hi"] = wilson_interval(bull, n)
    df["bullishness"] = bullishness(bull, df["n_bear"].to_numpy())
    df["agreement"] = agreement(bull, df["n_bear"].to_numpy())
    volume = np.log1p(df["n_msgs"].astype("float64"))
    z_s, z_v = [], []
    for _, rows in df.groupby(["calendar", "ticker"], sort=False).indices.items():  # rows are in period order
        z_s.append(trailing_zscore(df["share_bull"].iloc[rows], window, min_periods))
        z_v.append(trailing_zscore(volume.iloc[rows], window, min_periods))
    df["z_sentiment"] = pd.concat(z_s).sort_index()
    df["z_volume"] = pd.concat(z_v).sort_index()
    df["model_id"] = model_id
    return df[list(COLUMNS)]
