"""Does the model's sentiment index track what authors said themselves? StockEmotions 2020 check.

StockEmotions (../shared/data/StockEmotions_2020.csv.gz: 10,000 StockTwits messages of 37 large
caps in 2020, each with its author's own bullish/bearish tag) was never used for training. The
model (trained on $SPY 2017 only) scores every message; the index is built per NYSE session
(daily) and per week; for each ticker with at least `--min-ticker` messages, over the periods with
at least `--min-msgs` messages, it prints the Pearson correlation and the mean absolute error
between the model's share bullish and the self-tagged share, and the same correlation for the
model's mean P(bullish). Message-level accuracy against the tags is printed for context.
With `--plot` it also draws the index beside the close for a few tickers.

    .venv/bin/python benchmarks/index_validation.py --model /tmp/spy_default \
        --plot docs/images/index_tsla_aapl.png

The authors sampled these 10,000 from 50,281 posts to balance the classes, so the shares are not
those of the natural stream; the comparison is of the model against the tags, not of the market.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def compare(df, min_msgs: int):
    """Per ticker: periods, Pearson r (share and mean_p vs the tagged share), MAE, mean shares."""
    rows = {}
    for ticker, g in df.groupby("ticker"):
        g = g[(g["n_msgs"] >= min_msgs) & (g["n_tagged_bull"] + g["n_tagged_bear"] > 0)]
        if len(g) < 3:
            continue
        model, tagged = g["share_bull"].to_numpy(), g["share_tagged_bull"].to_numpy()
        rows[ticker] = {
            "periods": len(g),
            "r_share": float(np.corrcoef(model, tagged)[0, 1]),
            "r_mean_p": float(np.corrcoef(g["mean_p"], tagged)[0, 1]),
            "mae": float(np.abs(model - tagged).mean()),
            "model_share": float(g["n_bull"].sum() / g["n_msgs"].sum()),
            "tagged_share": float(g["n_tagged_bull"].sum() / (g["n_tagged_bull"] + g["n_tagged_bear"]).sum()),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model directory (trained on $SPY 2017, not on this file)")
    parser.add_argument("--data", default=str(DATA / "StockEmotions_2020.csv.gz"))
    parser.add_argument("--prices", default=str(DATA / "StockEmotions_2020_prices.csv.gz"))
    parser.add_argument("--min-ticker", type=int, default=400, help="tickers with at least this many messages")
    parser.add_argument("--min-msgs", type=int, default=5, help="periods with at least this many messages")
    parser.add_argument("--plot", help="PNG of the weekly index beside the close for --plot-tickers")
    parser.add_argument("--plot-tickers", default="TSLA,AAPL")
    args = parser.parse_args()

    import pandas as pd

    from stocksent.labels import labels_for
    from stocksent.sentiment import SentimentModel
    from stocksent.signals import sentiment_index

    messages = pd.read_csv(args.data)
    model = SentimentModel.load(args.model, precision="float32")
    messages["p_bullish"] = model.predict_proba(messages["message"].tolist())  # scored once, indexed twice
    messages["label"] = labels_for(messages["p_bullish"], model.threshold)
    model_id = model.model_id
    tagged = messages["sentiment"].isin(["bullish", "bearish"])
    accuracy = (messages["label"][tagged] == messages["sentiment"][tagged]).mean()
    counts = messages["ticker"].value_counts()
    tickers = counts[counts >= args.min_ticker].index.tolist()
    print(f"model {model_id}; {len(messages):,} messages, {messages.ticker.nunique()} tickers")
    bullish = (messages["sentiment"][tagged] == "bullish").mean()
    print(
        f"message-level accuracy against the authors' tags: {accuracy:.4f} "
        f"({tagged.sum():,} tagged messages; majority class {max(bullish, 1 - bullish):.4f})"
    )
    print(
        f"tickers with >= {args.min_ticker} messages: {', '.join(tickers)}; periods with >= {args.min_msgs} messages\n"
    )

    results, weekly = {}, None
    for freq, name in (("1W", "weekly"), ("1D", "daily")):
        df = sentiment_index(messages, freq=freq, tickers=tickers, model_id=model_id)
        results[name] = compare(df, args.min_msgs)
        weekly = df if freq == "1W" else weekly

    print(
        "| ticker | messages | weekly periods | weekly r (share) | weekly r (mean p) | weekly MAE "
        "| daily periods | daily r (share) | daily r (mean p) | daily MAE | share bullish: model / tags |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for ticker in tickers:
        w, d = results["weekly"].get(ticker), results["daily"].get(ticker)
        if w is None or d is None:
            continue
        print(
            f"| {ticker} | {counts[ticker]:,} | {w['periods']} | {w['r_share']:.2f} | {w['r_mean_p']:.2f} | "
            f"{w['mae']:.3f} | {d['periods']} | {d['r_share']:.2f} | {d['r_mean_p']:.2f} | {d['mae']:.3f} | "
            f"{w['model_share']:.2f} / {w['tagged_share']:.2f} |"
        )

    if args.plot:
        from stocksent.signals.plot import index_figure, read_prices, save_png

        fig = index_figure(weekly, args.plot_tickers.split(","), read_prices(args.prices), freq="1W")
        save_png(fig, args.plot, dpi=90)
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
