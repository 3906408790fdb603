"""`stocksent index`: per-ticker sentiment over market sessions, to a tidy Parquet/CSV table and a plot."""

from __future__ import annotations

import argparse
import sys

from stocksent.cli.args import positive_int

FREQS = ("1D", "1h", "30min", "1W")
CALENDARS = ("auto", "nyse", "24x7")


def ticker_list(text: str) -> list[str]:
    """`AAPL,$TSLA` -> ["AAPL", "TSLA"]."""
    names = [part.strip().lstrip("$").upper() for part in text.split(",") if part.strip().lstrip("$")]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated tickers like AAPL,TSLA")
    return names


def neutral_band(text: str) -> tuple[float, float]:
    """`0.4,0.6` -> (0.4, 0.6): two probabilities, low below high."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected two probabilities LOW,HIGH such as 0.4,0.6") from None
    if not 0.0 <= low < high <= 1.0:
        raise argparse.ArgumentTypeError(f"expected 0 <= LOW < HIGH <= 1, got {text}")
    return low, high


def window_size(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("must be at least 2 (a z-score needs a spread)")
    return value


def add_period_flags(p, defaults: bool = True) -> None:
    """--freq, --calendar and --neutral, which mean the same for `index` and `serve --index`.
    `defaults=False` leaves them None when not given, so that the caller can tell."""
    p.add_argument(
        "--freq", choices=FREQS, default="1D" if defaults else None, help="period: 1D (default), 1h, 30min or 1W"
    )
    p.add_argument(
        "--calendar",
        choices=CALENDARS,
        default="auto" if defaults else None,
        help="nyse sessions, or 24x7 UTC periods; auto (default): 24x7 for .X crypto symbols, else nyse",
    )
    p.add_argument(
        "--neutral",
        type=neutral_band,
        metavar="LOW,HIGH",
        help="count messages with LOW <= P(bullish) < HIGH as neutral (n_neutral); shares over the others (off)",
    )


def register(sub) -> None:
    p = sub.add_parser(
        "index",
        help="sentiment index: per ticker and period, volume, share bullish ± 95%% CI, bullishness, z-scores",
        description="Streams messages (anything `stocksent score` reads, or its output) in constant memory into one "
        "row per ticker and period. NYSE sessions by default: messages after the close, on weekends or holidays "
        "count for the next session. z-scores use only the periods before each one.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, globs or directories of messages")
    p.add_argument("--model", help="model directory written by train (optional if the input has p_bullish)")
    p.add_argument("--output", "-o", required=True, help="output table: .parquet, .csv or .jsonl (.csv.gz, .jsonl.gz)")
    p.add_argument("--format", choices=("parquet", "csv", "jsonl"), help="output format (default: from --output)")
    add_period_flags(p)
    p.add_argument("--tickers", type=ticker_list, help="only these tickers, e.g. AAPL,TSLA")
    p.add_argument("--window", type=window_size, default=20, help="periods before each one for z-scores (default 20)")
    p.add_argument("--min-periods", type=positive_int, help="fewest earlier periods for a z-score (default window/2)")
    p.add_argument(
        "--fill",
        action="store_true",
        help="a row for every empty period between a ticker's first and last message (default: only those "
        "within --window periods of a period with messages)",
    )
    p.add_argument("--single-ticker-only", action="store_true", help="leave out messages naming several tickers")
    p.add_argument("--text-column", help="column holding the messages (default: message, else body)")
    p.add_argument("--plot", metavar="PATH.png", help="also draw the index, volume (and --prices) per ticker")
    p.add_argument("--prices", metavar="PRICES.csv", help="CSV of date,ticker,close for the plot's price panel")
    p.add_argument("--batch-rows", type=positive_int, default=65536, help="messages read at a time (default 65536)")
    p.set_defaults(handler=run)


def require_index_extra(calendar: str, command: str = "stocksent index") -> None:
    """One line naming what the index needs and is missing (the `index` extra)."""
    import importlib.util

    from stocksent.errors import StocksentError

    missing = [name for name in ("pandas", "pyarrow") if importlib.util.find_spec(name) is None]
    if calendar != "24x7" and importlib.util.find_spec("exchange_calendars") is None:
        missing.append("exchange_calendars (for NYSE sessions; --calendar 24x7 works without it)")
    if missing:
        raise StocksentError(f"{command} needs {', '.join(missing)}: pip install 'stocksent[index]'")


def run(args: argparse.Namespace) -> int:
    from stocksent.errors import StocksentError

    require_index_extra(args.calendar)
    if args.prices and not args.plot:
        raise StocksentError("--prices is for the plot: add --plot PATH.png")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise StocksentError(f"--plot writes a PNG: give a path ending in .png, not {args.plot!r}")
    if args.min_periods is not None and not 2 <= args.min_periods <= args.window:
        raise StocksentError(f"--min-periods must be between 2 and --window ({args.window})")
    from stocksent.readers import expand_inputs
    from stocksent.signals.index import sentiment_index
    from stocksent.signals.plot import default_tickers, index_figure, read_prices, save_png
    from stocksent.writers import output_format, refuse_inputs, write_table

    output_format(args.output, args.format)  # a name that says no format fails before the long part
    inputs = expand_inputs(args.inputs) + ([args.prices] if args.prices else [])
    refuse_inputs([args.output, *([args.plot] if args.plot else [])], inputs)

    prices = read_prices(args.prices) if args.prices else None  # a bad prices file fails before the long part
    df = sentiment_index(
        args.inputs,
        args.model,
        freq=args.freq,
        calendar=args.calendar,
        tickers=args.tickers,
        window=args.window,
        min_periods=args.min_periods,
        single_ticker_only=args.single_ticker_only,
        text_column=args.text_column,
        batch_rows=args.batch_rows,
        neutral=args.neutral,
        fill=args.fill,
    )
    write_table(df, args.output, args.format)
    print(f"wrote {len(df)} rows ({df['ticker'].nunique()} tickers) to {args.output}", file=sys.stderr)
    if args.plot:
        shown = [t for t in (args.tickers or []) if t in set(df["ticker"])] or default_tickers(df)
        save_png(index_figure(df, shown[:12], prices, freq=args.freq), args.plot)
        print(f"wrote the plot of {', '.join(shown[:12])} to {args.plot}", file=sys.stderr)
    return 0
