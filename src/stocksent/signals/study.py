"""Does the index lead the price? z_sentiment against the returns of the sessions that follow it.

`lead_lag(index, prices)` takes a daily NYSE index (`stocksent index --freq 1D`) and daily prices
(date, ticker, close) and measures, on the same rows:

- the Pearson correlation of `z_sentiment` with the same session's return and with the return of
  the next 1 and next 5 sessions (pooled over tickers, and per ticker);
- a pooled OLS of the next session's return on `z_sentiment` and `z_volume`, with Newey-West (HAC)
  standard errors computed within each ticker (statsmodels' `hac-panel`), and the same regression
  per ticker with its own Newey-West errors;
- a panel regression with ticker fixed effects (linearmodels' `PanelOLS`), with Driscoll-Kraay
  errors (robust to correlation across tickers within a day and over time) and with errors
  clustered by ticker and by day.

Sessions follow the index's calendar, so nothing looks ahead. A row of session s counts the
messages up to s's close (one posted after the close counts for the next session); its "same
session" return is close(s-1) -> close(s), which it cannot predict (the messages and the move are
contemporaneous), and the returns it may predict start at close(s). A message known only by its
date might have been posted after that day's close, when the next session's move had begun, so a
row holding such messages (its part-of-day counts do not add up to n_msgs) is moved one session
later before anything is measured against it. Returns are log returns of the price, summed over a
horizon; a session missing from the prices ends the horizon there (no return is made up).

>>> panel = align(read_index("index.parquet"), read_prices("prices.csv", "adj_close"))  # doctest: +SKIP
>>> result = lead_lag(panel)                                                         # doctest: +SKIP
>>> result["correlation"]["next_1"]["r"]                                             # doctest: +SKIP
0.031
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np

from stocksent.errors import StocksentError
from stocksent.signals.aggregate import PART_COLUMNS

__all__ = ["read_index", "align", "lead_lag", "study_figure", "HORIZONS", "newey_west_lags"]

log = logging.getLogger(__name__)

HORIZONS = {"same": "same session", "next_1": "next session", "next_5": "next 5 sessions"}
_NEEDED = ("ticker", "calendar", "session", "session_date", "n_msgs", "z_sentiment", "z_volume", *PART_COLUMNS)


def read_index(path: str | os.PathLike):
    """An index table written by `stocksent index` (Parquet or CSV), checked for what the study needs."""
    import pandas as pd

    text = str(path)
    try:
        df = pd.read_parquet(path) if text.lower().endswith((".parquet", ".pq")) else pd.read_csv(path)
    except FileNotFoundError:
        raise StocksentError(f"no such file: {path}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise StocksentError(f"cannot read the index {path}: {exc}") from None
    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise StocksentError(
            f"{path} lacks {', '.join(missing)}: give a table written by `stocksent index --freq 1D` (NYSE sessions)"
        )
    return df


def align(index, prices):
    """One row per ticker and session: z_sentiment, z_volume, the lag (1 where a bare date may look ahead) and
    the log returns of the same session (`same`) and of the 1 and 5 sessions it may predict (`next_1`, `next_5`)."""
    import pandas as pd

    daily = index[(index["calendar"] == "nyse") & (index["session"] == "day")]
    if not len(daily):
        raise StocksentError(
            "the study needs a daily index on NYSE sessions (stocksent index --freq 1D, a stock, not 24x7)"
        )
    parts = daily[list(PART_COLUMNS)].fillna(0).sum(axis=1).to_numpy()
    rows = pd.DataFrame(
        {
            "ticker": daily["ticker"].to_numpy(),
            "date": pd.to_datetime(daily["session_date"]).to_numpy(),
            "n_msgs": daily["n_msgs"].to_numpy(),
            "z_sentiment": daily["z_sentiment"].to_numpy(dtype=np.float64),
            "z_volume": daily["z_volume"].to_numpy(dtype=np.float64),
            "lag": (daily["n_msgs"].to_numpy() > parts).astype(np.int64),  # bare dates among the messages
        }
    )
    pieces = []
    for ticker, mine in rows.groupby("ticker", sort=True):
        close = prices[prices["ticker"] == ticker].sort_values("date").drop_duplicates("date")
        if len(close) < 3:
            continue
        dates = close["date"].to_numpy(dtype="datetime64[ns]")
        logret = np.r_[np.nan, np.diff(np.log(close["close"].to_numpy(dtype=np.float64)))]
        place = np.searchsorted(dates, mine["date"].to_numpy(dtype="datetime64[ns]"))
        found = (place < len(dates)) & (dates[np.minimum(place, len(dates) - 1)] == mine["date"].to_numpy())
        mine, place = mine[found].copy(), place[found]
        start = place + 1 + mine["lag"].to_numpy()  # the first session whose return the row may predict
        mine["same"] = logret[place]
        mine["next_1"] = _window_sum(logret, start, 1)
        mine["next_5"] = _window_sum(logret, start, 5)
        pieces.append(mine)
    if not pieces:
        raise StocksentError("no ticker of the index has prices on its sessions: check the prices' tickers and dates")
    panel = pd.concat(pieces, ignore_index=True)
    log.info(
        "study: %d ticker-sessions of %d tickers with prices (%d moved one session later for bare dates)",
        len(panel),
        panel["ticker"].nunique(),
        int(panel["lag"].sum()),
    )
    return panel


def _window_sum(values: np.ndarray, start: np.ndarray, length: int) -> np.ndarray:
    """Sum of values[start : start + length] per start; NaN where the window leaves the array or holds a NaN."""
    out = np.full(len(start), np.nan)
    ok = start + length <= len(values)
    if ok.any():
        idx = start[ok, None] + np.arange(length)[None, :]
        out[ok] = values[idx].sum(axis=1)
    return out


def newey_west_lags(n: int) -> int:
    """Newey and West's (1994) rule of thumb: floor(4 (n / 100)^(2/9))."""
    return int(math.floor(4 * (n / 100) ** (2 / 9))) if n > 0 else 0


def _correlation(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Pearson r with its Fisher-z 95% interval and two-sided p-value."""
    from scipy import stats

    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 4 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return {"r": float("nan"), "lo": float("nan"), "hi": float("nan"), "p": float("nan"), "n": n}
    r, p = stats.pearsonr(x[ok], y[ok])
    half = 1.959963984540054 / math.sqrt(n - 3)
    z = math.atanh(min(max(r, -0.999999), 0.999999))
    return {"r": float(r), "lo": math.tanh(z - half), "hi": math.tanh(z + half), "p": float(p), "n": n}


def _coefficients(fit, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    params, errors, pvalues = (np.asarray(v, dtype=np.float64) for v in (fit.params, fit.bse, fit.pvalues))
    return {
        name: {
            "coef": float(params[i]),
            "se": float(errors[i]),
            "t": float(params[i] / errors[i]),
            "p": float(pvalues[i]),
        }
        for i, name in enumerate(names)
    }


def lead_lag(panel, min_obs: int = 30) -> dict[str, Any]:
    """Correlations, the pooled and per-ticker HAC regressions and the panel regressions of `align`'s rows.

    Correlations use every row with a z_sentiment; the regressions those with a z_volume too.
    Tickers with fewer than `min_obs` usable sessions get no regression of their own (their rows
    still count in the pooled and panel ones).
    """
    import pandas as pd
    import statsmodels.api as sm

    usable = panel[np.isfinite(panel["z_sentiment"])]
    result: dict[str, Any] = {
        "sessions": int(len(usable)),
        "tickers": int(usable["ticker"].nunique()),
        "bare_date_rows_moved": int(usable["lag"].sum()),
        "correlation": {h: _correlation(usable["z_sentiment"].to_numpy(), usable[h].to_numpy()) for h in HORIZONS},
    }
    per_ticker = {}
    for ticker, rows in usable.groupby("ticker"):
        entry = {h: _correlation(rows["z_sentiment"].to_numpy(), rows[h].to_numpy())["r"] for h in HORIZONS}
        fit_rows = rows[np.isfinite(rows["next_1"]) & np.isfinite(rows["z_volume"])]
        entry["sessions"] = int(len(fit_rows))
        if len(fit_rows) >= min_obs:
            x = sm.add_constant(fit_rows[["z_sentiment", "z_volume"]].to_numpy())
            lags = newey_west_lags(len(fit_rows))
            fit = sm.OLS(fit_rows["next_1"].to_numpy(), x).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
            entry["hac"] = {"lags": lags, **_coefficients(fit, ("const", "z_sentiment", "z_volume"))}
        per_ticker[ticker] = entry
    result["per_ticker"] = per_ticker

    rows = usable[np.isfinite(usable["next_1"]) & np.isfinite(usable["z_volume"])].sort_values(["ticker", "date"])
    if len(rows) < 10 or rows["ticker"].nunique() < 2:
        raise StocksentError(
            f"too few ticker-sessions with a z-score and a next-session return ({len(rows)}) for the regressions: "
            "index more messages, or lower --window / --min-periods in stocksent index"
        )
    lags = newey_west_lags(int(rows.groupby("ticker").size().median()))
    x = sm.add_constant(rows[["z_sentiment", "z_volume"]].to_numpy())
    groups = pd.factorize(rows["ticker"])[0]
    pooled = sm.OLS(rows["next_1"].to_numpy(), x).fit(
        cov_type="hac-panel", cov_kwds={"groups": groups, "maxlags": lags}
    )
    result["pooled_hac"] = {
        "sessions": int(len(rows)),
        "lags": lags,
        "r2": float(pooled.rsquared),
        **_coefficients(pooled, ("const", "z_sentiment", "z_volume")),
    }
    result["panel"] = _panel(rows, lags)
    return result


def _panel(rows, lags: int) -> dict[str, Any]:
    """PanelOLS with ticker effects: Driscoll-Kraay (kernel) and two-way clustered standard errors."""
    from linearmodels.panel import PanelOLS

    data = rows.set_index(["ticker", "date"])[["next_1", "z_sentiment", "z_volume"]]
    model = PanelOLS(data["next_1"], data[["z_sentiment", "z_volume"]], entity_effects=True)
    out: dict[str, Any] = {"sessions": int(len(data)), "tickers": int(rows["ticker"].nunique())}
    fits = {
        "driscoll_kraay": model.fit(cov_type="kernel", kernel="bartlett", bandwidth=lags),
        "clustered_ticker_day": model.fit(cov_type="clustered", cluster_entity=True, cluster_time=True),
    }
    for name, fit in fits.items():
        out[name] = {
            v: {
                "coef": float(fit.params[v]),
                "se": float(fit.std_errors[v]),
                "t": float(fit.tstats[v]),
                "p": float(fit.pvalues[v]),
            }
            for v in ("z_sentiment", "z_volume")
        }
    out["r2_within"] = float(fits["driscoll_kraay"].rsquared_within)
    out["bandwidth"] = lags
    return out


def study_figure(panel, result: dict[str, Any]):
    """Left: the pooled correlation of z_sentiment with each horizon's return, with its 95% interval;
    right: the mean next-session return per decile of z_sentiment (with its standard error)."""
    import pandas as pd
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    names = list(HORIZONS)
    corr = [result["correlation"][h] for h in names]
    r = np.array([c["r"] for c in corr])
    lo, hi = np.array([c["lo"] for c in corr]), np.array([c["hi"] for c in corr])
    left.bar(range(len(names)), r, color=["#7f7f7f", "#1f77b4", "#1f77b4"])
    left.errorbar(range(len(names)), r, yerr=[r - lo, hi - r], fmt="none", ecolor="black", capsize=4)
    left.axhline(0, color="black", lw=0.8)
    left.set_xticks(range(len(names)), [f"{HORIZONS[h]}\n(n = {c['n']:,})" for h, c in zip(names, corr)])
    left.set_ylabel("Pearson r with z_sentiment")
    left.set_title("correlation with the return (95% CI)", fontsize=9)
    left.grid(alpha=0.3, axis="y")
    rows = panel[np.isfinite(panel["z_sentiment"]) & np.isfinite(panel["next_1"])]
    if len(rows) >= 20:
        deciles = pd.qcut(rows["z_sentiment"], 10, labels=False, duplicates="drop")
        stats = rows.groupby(deciles).agg(
            z=("z_sentiment", "mean"), mean=("next_1", "mean"), se=("next_1", "sem"), n=("next_1", "size")
        )
        right.errorbar(stats["z"], stats["mean"] * 1e4, yerr=stats["se"] * 1e4, fmt="o-", color="#1f77b4", capsize=3)
    right.axhline(0, color="black", lw=0.8)
    right.set_xlabel("z_sentiment (decile mean)")
    right.set_ylabel("next-session log return (bp)")
    right.set_title("next-session return by z_sentiment decile (± 1 s.e.)", fontsize=9)
    right.grid(alpha=0.3)
    fig.suptitle(
        f"Lead-lag of the sentiment index: {result['sessions']:,} ticker-sessions, {result['tickers']} tickers",
        fontsize=10,
    )
    return fig
