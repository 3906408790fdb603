"""The index as a picture: per ticker, share bullish with its 95% band, message volume, and the close.

Drawn on a `matplotlib.figure.Figure` (never pyplot), so the caller's backend and pyplot's figure
list are untouched.

>>> fig = index_figure(df, tickers=["TSLA", "AAPL"], prices=prices)   # doctest: +SKIP
>>> save_png(fig, "index.png")                                       # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
from typing import Any

from stocksent.errors import StocksentError

__all__ = ["index_figure", "read_prices", "save_png", "default_tickers"]

_FREQ_WORDS = {"1D": "daily", "1W": "weekly", "1h": "hourly", "30min": "30-minute"}
BULL, TAG, VOLUME, PRICE = "#1f77b4", "#ff7f0e", "#7f7f7f", "#2ca02c"


def read_prices(path: str | os.PathLike, column: str | None = "close"):
    """A CSV of `date,ticker,close` (other columns ignored) as a frame with date (datetime), ticker, close.

    `column` names the price to read as `close` (for example `adj_close`, adjusted for dividends and
    splits); None: `adj_close` where the file has it, else `close`. The frame's `attrs["column"]`
    says which was read.
    """
    import pandas as pd

    try:
        prices = pd.read_csv(path)
    except FileNotFoundError:
        raise StocksentError(f"no such file: {path}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise StocksentError(f"cannot read prices from {path}: {exc}") from None
    prices.columns = [str(c).strip().lower() for c in prices.columns]
    column = ("adj_close" if "adj_close" in prices.columns else "close") if column is None else column.strip().lower()
    missing = [c for c in ("date", "ticker", column) if c not in prices.columns]
    if missing:
        raise StocksentError(
            f"{path} has no {', '.join(missing)} column (columns: {', '.join(prices.columns)}); "
            f"give a CSV of date,ticker,{column}"
        )
    prices["close"] = prices[column]
    prices["date"] = pd.to_datetime(prices["date"], errors="coerce", format="mixed")
    prices["close"] = pd.to_numeric(prices["close"], errors="coerce")
    prices["ticker"] = prices["ticker"].astype(str).str.strip().str.lstrip("$").str.upper()
    prices = prices.dropna(subset=["date", "close"])
    if not len(prices):
        raise StocksentError(f"{path} has no rows with a readable date and close")
    if prices["date"].dt.tz is not None:
        prices["date"] = prices["date"].dt.tz_convert("UTC").dt.tz_localize(None)
    prices = prices[["date", "ticker", "close"]]
    prices.attrs["column"] = column
    return prices


def default_tickers(df, limit: int = 6) -> list[str]:
    """The `limit` tickers with the most messages (a grid of all 500 tickers helps nobody)."""
    return df.groupby("ticker")["n_msgs"].sum().sort_values(ascending=False).index[:limit].tolist()


def _x(rows):
    """Where a period sits on the time axis: its session date (NYSE days and weeks) or its start."""
    import pandas as pd

    if rows["calendar"].iloc[0] == "nyse" and rows["session"].iloc[0] in ("day", "week"):
        return pd.to_datetime(rows["session_date"])
    return rows["period_start"].dt.tz_convert("UTC").dt.tz_localize(None)


def index_figure(df, tickers: list[str] | None = None, prices: Any = None, freq: str | None = None, columns: int = 2):
    """A grid with one block per ticker: share bullish ± Wilson 95% (and the authors' tagged share
    where tags exist), volume bars, and the close on its own panel when `prices` is given."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    tickers = tickers or default_tickers(df)
    missing = [t for t in tickers if t not in set(df["ticker"])]
    if missing:
        raise StocksentError(f"no rows for {', '.join(missing)} in the index; plot tickers that are in it")
    ncols = max(1, min(columns, len(tickers)))
    nrows = -(-len(tickers) // ncols)
    panels = 3 if prices is not None else 2
    fig = Figure(figsize=(6.4 * ncols, (4.6 if panels == 3 else 3.6) * nrows), layout="constrained")
    grid = fig.subfigures(nrows, ncols, squeeze=False)
    model = str(df["model_id"].iloc[0])
    for i, ticker in enumerate(tickers):
        sub = grid[i // ncols][i % ncols]
        rows = df[df["ticker"] == ticker]
        x = _x(rows)
        axes = sub.subplots(panels, 1, sharex=True, height_ratios=[3, 1, 2][:panels])
        ax = axes[0]
        has = rows["n_msgs"].to_numpy() > 0
        ax.fill_between(x[has], rows["ci_lo"][has], rows["ci_hi"][has], color=BULL, alpha=0.2, lw=0, label="95% CI")
        ax.plot(x[has], rows["share_bull"][has], color=BULL, lw=1.4, marker=".", ms=3, label="model")
        tagged = rows["n_tagged_bull"] + rows["n_tagged_bear"]
        if (tagged > 0).any():
            t = tagged.to_numpy() > 0
            ax.plot(x[t], rows["share_tagged_bull"][t], color=TAG, lw=1, ls="--", label="authors' tags")
        ax.set_ylim(0, 1)
        ax.set_ylabel("share bullish")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=7, ncols=3, framealpha=0.85)
        period = _FREQ_WORDS.get(freq or "", freq or "") or "per period"
        calendar = "NYSE sessions" if rows["calendar"].iloc[0] == "nyse" else "24x7 UTC"
        sub.suptitle(
            f"${ticker}: share bullish by the model, {period} ({calendar}), N = {int(rows['n_msgs'].sum()):,} messages",
            fontsize=9,
        )
        width = _bar_width(x)
        axes[1].bar(x, rows["n_msgs"], width=width, color=VOLUME)
        axes[1].set_ylabel("messages")
        axes[1].grid(alpha=0.3)
        if prices is not None:
            close = prices[prices["ticker"] == ticker]
            if len(close):
                close = close[(close["date"] >= x.min()) & (close["date"] <= x.max())]
                axes[2].plot(close["date"], close["close"], color=PRICE, lw=1.2)
            else:
                axes[2].text(0.5, 0.5, f"no prices for {ticker}", ha="center", va="center", transform=axes[2].transAxes)
            axes[2].set_ylabel("close")
            axes[2].grid(alpha=0.3)
        locator = mdates.AutoDateLocator(maxticks=8)
        axes[-1].xaxis.set_major_locator(locator)
        axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    fig.suptitle(f"Sentiment index, model {model}", fontsize=10)
    return fig


def _bar_width(x) -> float:
    """Bars as wide as the typical gap between periods (in days, matplotlib's date unit)."""
    import numpy as np

    if len(x) < 2:
        return 0.8
    gaps = np.diff(x.to_numpy().astype("datetime64[s]").astype(np.int64)) / 86400.0
    return float(np.median(gaps)) * 0.8


def save_png(fig, path: str | os.PathLike, dpi: int = 100) -> None:
    """The figure as a PNG, written atomically."""
    from stocksent.atomic import write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    try:
        write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise StocksentError(f"cannot write {path}: {exc.strerror or exc}") from None
