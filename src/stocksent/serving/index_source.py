"""What `serve --index` serves: the sentiment index of scored messages, and the close beside it.

The index is computed by the one library function, `stocksent.signals.sentiment_index`, from the
output of `stocksent score` (its `p_bullish` and `label`), once per frequency and kept: the
default frequency at start-up, so that a bad input stops `serve` before the port opens, each
other one when a request first asks for it (one computation per frequency, off the event loop).
A frequency the data cannot give (30-minute periods from messages known only by their date) is
kept as the error it is. The corrected shares (`share_bull_adj` and the rest) need the served
model's validation rates (its rates.json): without them the table has no corrected columns and
`note` says why.

>>> source = IndexSource(IndexOptions("scored.parquet", freq="1W"), model)  # doctest: +SKIP
>>> source.table("1W").select(["TSLA"], None, None)[["session_date", "share_bull"]].head(1)  # doctest: +SKIP
  session_date  share_bull
0   2020-01-06    0.716981
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stocksent.errors import StocksentError
from stocksent.signals.periods import FREQS

__all__ = ["IndexOptions", "IndexSource", "IndexTable"]

log = logging.getLogger("stocksent.serving.server")


@dataclass(frozen=True)
class IndexOptions:
    """`serve --index SCORED` and the flags beside it (`--freq`, `--calendar`, `--neutral`, `--prices`)."""

    inputs: str  # a file or folder of `stocksent score` output
    freq: str = "1D"  # what the page shows first and /v1/index answers without freq=
    calendar: str = "auto"
    neutral: tuple[float, float] | None = None
    prices: str | None = None  # a CSV of date,ticker,close

    def to_json(self) -> str:
        """The options with absolute paths, for the workers of `serve --workers N` (an environment variable)."""
        paths = {"inputs": str(Path(self.inputs).resolve())}
        if self.prices is not None:
            paths["prices"] = str(Path(self.prices).resolve())
        return json.dumps({**asdict(self), **paths})

    @classmethod
    def from_json(cls, text: str) -> IndexOptions:
        data = json.loads(text)
        neutral = data.get("neutral")
        return cls(**{**data, "neutral": tuple(neutral) if neutral is not None else None})


@dataclass(frozen=True)
class IndexTable:
    """One frequency's index (`frame`, as sentiment_index returns it), with each row's date for
    start=/end= (its session date on NYSE, its start's UTC date on 24x7 periods) and each
    ticker's rows."""

    frame: Any
    dates: np.ndarray  # datetime64[D], per row
    rows_of: dict[str, np.ndarray]  # ticker -> its rows' positions, in period order

    @classmethod
    def of(cls, frame) -> IndexTable:
        import pandas as pd

        frame = frame.reset_index(drop=True)
        starts = frame["period_start"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[D]")
        sessions = pd.to_datetime(frame["session_date"]).to_numpy().astype("datetime64[D]")
        dates = np.where(frame["calendar"].to_numpy() == "nyse", sessions, starts)
        rows_of = {str(t): np.asarray(rows) for t, rows in frame.groupby("ticker", sort=False).indices.items()}
        return cls(frame, dates, rows_of)

    def select(self, tickers: list[str], start: datetime.date | None, end: datetime.date | None):
        """The rows of `tickers` (in that order, each in period order) dated from `start` to `end`, both included."""
        rows = np.concatenate([self.rows_of[t] for t in tickers]) if tickers else np.empty(0, dtype=np.int64)
        keep = np.ones(len(rows), dtype=bool)
        if start is not None:
            keep &= self.dates[rows] >= np.datetime64(start, "D")
        if end is not None:
            keep &= self.dates[rows] <= np.datetime64(end, "D")
        return self.frame.iloc[rows[keep]].reset_index(drop=True)

    def tickers(self) -> list[dict[str, Any]]:
        """Every ticker with its messages and the dates of its first and last period with messages, most messages first."""
        frame = self.frame
        busy = frame["n_msgs"].to_numpy() > 0
        summary = []
        for ticker, rows in self.rows_of.items():
            dated = self.dates[rows][busy[rows]]
            summary.append(
                {
                    "ticker": ticker,
                    "calendar": str(frame["calendar"].iat[rows[0]]),
                    "n_msgs": int(frame["n_msgs"].to_numpy()[rows].sum()),
                    "first": str(dated.min()) if len(dated) else None,
                    "last": str(dated.max()) if len(dated) else None,
                }
            )
        return sorted(summary, key=lambda t: (-t["n_msgs"], t["ticker"]))


class IndexSource:
    """The index of `options.inputs` by frequency, the prices, and what the served model's rates allow.

    `model_dir` and `threshold`: the served model's directory and threshold (its rates.json is read
    with the threshold checked); `model_id`: the id the index's rows carry (artifacts.model_id).
    The scored messages should be that model's: its rates correct their shares.
    """

    def __init__(self, options: IndexOptions, model_dir: str | Path, threshold: float, model_id: str):
        from stocksent.rates import RATES, read_rates
        from stocksent.signals.plot import read_prices

        if options.freq not in FREQS:
            raise StocksentError(f"unknown frequency {options.freq!r}: use one of {', '.join(FREQS)}")
        self.options, self.model_id = options, model_id
        self.rates = read_rates(model_dir, threshold)
        self.note = None
        if self.rates is None:
            self.note = (
                f"the model {model_id} has no {RATES} (its validation rates): no corrected shares; "
                "train it again to get them"
            )
            log.warning("serve --index: %s", self.note)
        self.prices = read_prices(options.prices) if options.prices else None  # a bad file fails at start-up
        _check_scored(options.inputs)
        self._tables: dict[str, IndexTable | StocksentError] = {}
        self._locks = {freq: threading.Lock() for freq in FREQS}
        self.tickers = self.table(options.freq).tickers()  # start-up: a bad input raises here
        log.info("serve --index: %d tickers, GET /v1/index and the page at /index", len(self.tickers))

    def table(self, freq: str) -> IndexTable:
        """The index at `freq`, computed on first use; StocksentError where the data cannot give it."""
        with self._locks[freq]:
            if freq not in self._tables:
                try:
                    self._tables[freq] = IndexTable.of(self._compute(freq))
                except StocksentError as err:
                    self._tables[freq] = err
            found = self._tables[freq]
        if isinstance(found, StocksentError):
            raise found
        return found

    def _compute(self, freq: str):
        from stocksent.signals.index import sentiment_index

        options = self.options
        log.info("serve --index: computing the %s index of %s", freq, Path(options.inputs).name)
        return sentiment_index(
            [options.inputs],
            None,
            freq=freq,
            calendar=options.calendar,
            neutral=options.neutral,
            rates=self.rates,
            model_id=self.model_id,
        )

    def closes(
        self, tickers: list[str], start: datetime.date | None, end: datetime.date | None
    ) -> list[dict[str, Any]] | None:
        """The daily closes of `tickers` from `start` to `end` (both included), by ticker then date; None without prices."""
        if self.prices is None:
            return None
        prices = self.prices[self.prices["ticker"].isin(tickers)]
        if start is not None:
            prices = prices[prices["date"] >= np.datetime64(start, "D")]
        if end is not None:
            prices = prices[prices["date"] < np.datetime64(end, "D") + np.timedelta64(1, "D")]
        order = {t: i for i, t in enumerate(tickers)}
        prices = prices.assign(order=prices["ticker"].map(order)).sort_values(["order", "date"], kind="stable")
        return [
            {"ticker": t, "date": str(d), "close": float(c)}
            for t, d, c in zip(
                prices["ticker"], prices["date"].to_numpy().astype("datetime64[D]"), prices["close"].to_numpy()
            )
        ]


def _check_scored(inputs: str) -> None:
    """`serve --index` reads what `stocksent score` writes: one clear line for anything else."""
    from stocksent.readers import iter_batches

    with contextlib.closing(iter_batches(inputs, batch_rows=1024)) as batches:
        first = next(batches, None)
    if first is None:
        raise StocksentError(f"--index {inputs}: no messages in it; give the output of `stocksent score`")
    if "p_bullish" not in first.schema.names:
        raise StocksentError(
            f"--index {inputs} has no p_bullish column: score the messages first "
            "(stocksent score MESSAGES --model DIR --output scored.parquet) and serve that"
        )
