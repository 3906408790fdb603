"""`stocksent study`: does a daily index lead the price? Correlations and regressions against returns, a plot."""

from __future__ import annotations

import argparse
import sys

from stocksent.cli.args import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "study",
        help="lead-lag of a daily index against prices: correlations, HAC and panel regressions, a plot",
        description="Takes a daily NYSE index (stocksent index --freq 1D) and daily prices (CSV date,ticker,close) and "
        "measures z_sentiment against the same session's return and the next 1 and 5 sessions' returns: Pearson "
        "correlations, a pooled OLS of the next session's return on z_sentiment and z_volume with Newey-West errors "
        "per ticker, and a panel regression with ticker effects (Driscoll-Kraay and ticker-and-day clustered errors). "
        "A message after the close counts for the next session, and a row with messages known only by their date is "
        "measured against the session after, so nothing looks ahead. Needs the study extra: pip install "
        "'stocksent[study]'.",
    )
    p.add_argument("index", metavar="INDEX", help="index table written by stocksent index --freq 1D (.parquet or CSV)")
    p.add_argument("--prices", required=True, metavar="PRICES.csv", help="CSV of date,ticker,close")
    p.add_argument(
        "--price-column",
        help="the price column to use (default: adj_close where the file has it, else close)",
    )
    p.add_argument("--output", "-o", metavar="RESULTS.json", help="also write every number as JSON")
    p.add_argument("--plot", metavar="PATH.png", help="draw the correlations and the return by z_sentiment decile")
    p.add_argument(
        "--min-obs", type=positive_int, default=30, help="sessions a ticker needs for its own regression (default 30)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from stocksent.errors import StocksentError

    missing = [m for m in ("statsmodels", "linearmodels", "pandas") if importlib.util.find_spec(m) is None]
    if missing:
        raise StocksentError(f"stocksent study needs {', '.join(missing)}: pip install 'stocksent[study]'")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise StocksentError(f"--plot writes a PNG: give a path ending in .png, not {args.plot!r}")
    from stocksent.signals.plot import read_prices, save_png
    from stocksent.signals.study import align, lead_lag, read_index, study_figure

    prices = read_prices(args.prices, args.price_column)  # None: adj_close where the file has it
    panel = align(read_index(args.index), prices)
    result = lead_lag(panel, min_obs=args.min_obs)
    result["price_column"] = prices.attrs["column"]
    print(summary(result))
    if args.output:
        from stocksent.atomic import write_json

        try:
            write_json(args.output, _finite(result))
        except OSError as exc:
            raise StocksentError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"wrote the results to {args.output}", file=sys.stderr)
    if args.plot:
        save_png(study_figure(panel, result), args.plot)
        print(f"wrote the plot to {args.plot}", file=sys.stderr)
    return 0


def _finite(value):
    """NaN (a correlation of a constant, a regression with too few rows) as JSON null, which every parser reads."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return None
    return value


def summary(result: dict) -> str:
    """The study's numbers as a few lines of text."""
    from stocksent.signals.study import HORIZONS

    lines = [
        f"{result['sessions']:,} ticker-sessions with a z-score, {result['tickers']} tickers "
        f"({result['bare_date_rows_moved']:,} rows with bare dates measured one session later); price: "
        f"{result['price_column']}",
        "correlation of z_sentiment with the log return:",
    ]
    for key, words in HORIZONS.items():
        c = result["correlation"][key]
        lines.append(
            f"  {words:<16} r = {c['r']:+.3f}  [{c['lo']:+.3f}, {c['hi']:+.3f}]  p = {c['p']:.3f}  n = {c['n']:,}"
        )
    pooled = result["pooled_hac"]
    lines.append(
        f"next-session return ~ z_sentiment + z_volume, pooled OLS, Newey-West within tickers ({pooled['lags']} lags):"
    )
    for name in ("z_sentiment", "z_volume"):
        c = pooled[name]
        lines.append(f"  {name:<12} {c['coef'] * 1e4:+8.2f} bp per unit  (t = {c['t']:+.2f}, p = {c['p']:.3f})")
    panel = result["panel"]
    for fit, words in (("driscoll_kraay", "Driscoll-Kraay"), ("clustered_ticker_day", "clustered by ticker and day")):
        cells = ", ".join(
            f"{name} {panel[fit][name]['coef'] * 1e4:+.2f} bp (t = {panel[fit][name]['t']:+.2f})"
            for name in ("z_sentiment", "z_volume")
        )
        lines.append(f"panel, ticker effects, {words}: {cells}")
    return "\n".join(lines)
