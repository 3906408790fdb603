"""Does the index's level match what authors said themselves? Plain and prior-shift-corrected shares.

Per ticker and period (NYSE sessions and weeks, periods with at least `--min-msgs` messages that
carry the authors' own bullish/bearish tags), the mean absolute error and Pearson r of each of the
model's shares against the self-tagged share: the plain share (`share_bull`), the corrected ones
(ACC, PACC, EM: `share_bull_acc/_pacc/_em`, see docs/index-levels.md) and the mean P(bullish).

Two corpora, neither (or only its held-out part) seen in training:
- StockEmotions 2020 (../shared/data/StockEmotions_2020.csv.gz): 10,000 messages of 37 large caps,
  class-balanced by its authors' sampling.
- each dated source of StockTwits_public_2012_2026.csv.gz; where the model trained on that file,
  only the messages of its recorded test split are used (in-domain, never trained on).

The rates come from the model's rates.json (its own validation split); a model trained before that
file existed gets them measured again from its recorded validation split (`measure_rates`).

    .venv/bin/python benchmarks/index_validation.py --model /work/scratch/models/spy-default
    .venv/bin/python benchmarks/index_validation.py --model DIR --plot docs/images/index_tsla_aapl.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARES = (
    ("plain", "share_bull"),
    ("ACC", "share_bull_acc"),
    ("PACC", "share_bull_pacc"),
    ("EM", "share_bull_em"),
    ("mean p", "mean_p"),
)


def compare(df, min_msgs: int) -> dict:
    """Pooled over ticker-periods with >= min_msgs messages and a tagged share: {name: (MAE, r)} and the count."""
    tagged = df["n_tagged_bull"] + df["n_tagged_bear"]
    rows = df[(df["n_msgs"] >= min_msgs) & (tagged > 0)]
    truth = rows["share_tagged_bull"].to_numpy(dtype=np.float64)
    out = {"periods": len(rows), "tickers": rows["ticker"].nunique(), "tagged share": float(truth.mean())}
    for name, column in SHARES:
        value = rows[column].to_numpy(dtype=np.float64)
        r = float(np.corrcoef(value, truth)[0, 1]) if len(rows) > 2 else float("nan")
        out[name] = (float(np.abs(value - truth).mean()), r)
    out["clipped"] = float(rows["em_clipped"].mean()) if len(rows) else float("nan")
    return out


def per_ticker(daily, weekly, min_msgs: int, tickers: list[str]) -> None:
    """StockEmotions' largest tickers: r and MAE of the plain and EM shares, and the levels over the year."""
    print(f"\nStockEmotions 2020, tickers with the most messages (periods with >= {min_msgs} messages)\n")
    print(
        "| ticker | messages | weekly periods | weekly r plain / EM | weekly MAE plain / EM | daily periods "
        "| daily r plain / EM | daily MAE plain / EM | share bullish: model / EM / tags |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for ticker in tickers:
        cells = []
        for df in (weekly, daily):
            rows = df[(df.ticker == ticker) & (df.n_msgs >= min_msgs) & (df.n_tagged_bull + df.n_tagged_bear > 0)]
            tags = rows.share_tagged_bull.to_numpy()
            r = [np.corrcoef(rows[c], tags)[0, 1] for c in ("share_bull", "share_bull_em")]
            mae = [np.abs(rows[c] - tags).mean() for c in ("share_bull", "share_bull_em")]
            cells += [f"{len(rows)}", f"{r[0]:.2f} / {r[1]:.2f}", f"{mae[0]:.3f} / {mae[1]:.3f}"]
        rows = weekly[weekly.ticker == ticker]
        n = rows.n_msgs.sum()
        levels = (
            f"{rows.n_bull.sum() / n:.2f} / {(rows.share_bull_em * rows.n_msgs).sum() / n:.2f} / "
            f"{rows.n_tagged_bull.sum() / (rows.n_tagged_bull + rows.n_tagged_bear).sum():.2f}"
        )
        print(f"| {ticker} | {n:,} | " + " | ".join(cells) + f" | {levels} |")


def model_rates(directory: str):
    from stocksent.rates import read_rates
    from stocksent.sentiment import SentimentModel
    from stocksent.signals.quantify import measure_rates

    model = SentimentModel.load(directory, precision="float32")
    rates = read_rates(directory, model.threshold)
    where = "rates.json"
    if rates is None:
        rates, where = measure_rates(model), "measured again on its recorded validation split (no rates.json)"
    return model, rates, where


def held_out(model, public):
    """The public corpus's rows the model never trained on: all of them, or its test split's where it trained on it."""
    from stocksent.data import sha256_file
    from stocksent.splits import recorded_splits

    recorded = model.config.get("data", {})
    shas = {f.get("sha256") for f in recorded.get("files", [])}
    if sha256_file(public) not in shas:
        return None, "not trained on this file"
    test = recorded_splits(recorded, model.text_options).test
    return set(test.messages), "trained on this file: its recorded test split only"


def table(results: dict, title: str) -> None:
    print(f"\n{title}\n")
    print("| data | freq | ticker-periods | tickers | " + " | ".join(f"MAE {n}" for n, _ in SHARES) + " | ")
    print("|---|---|---:|---:|" + "---:|" * len(SHARES))
    for (data, freq), res in results.items():
        cells = " | ".join(f"{res[n][0]:.3f}" for n, _ in SHARES)
        print(f"| {data} | {freq} | {res['periods']} | {res['tickers']} | {cells} |")
    print("\n| data | freq | " + " | ".join(f"r {n}" for n, _ in SHARES) + " | tagged share | EM at 0 or 1 |")
    print("|---|---|" + "---:|" * (len(SHARES) + 2))
    for (data, freq), res in results.items():
        cells = " | ".join(f"{res[n][1]:.3f}" for n, _ in SHARES)
        print(f"| {data} | {freq} | {cells} | {res['tagged share']:.3f} | {res['clipped']:.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--emotions", default=str(DATA / "StockEmotions_2020.csv.gz"))
    parser.add_argument("--public", default=str(DATA / "StockTwits_public_2012_2026.csv.gz"))
    parser.add_argument("--prices", default=str(DATA / "StockEmotions_2020_prices.csv.gz"))
    parser.add_argument("--min-msgs", type=int, default=5, help="periods with at least this many messages")
    parser.add_argument("--plot", help="PNG of the weekly StockEmotions index beside the close for --plot-tickers")
    parser.add_argument("--plot-tickers", default="TSLA,AAPL")
    args = parser.parse_args()

    import pandas as pd

    from stocksent.signals import sentiment_index

    model, rates, where = model_rates(args.model)
    model_id = model.model_id
    print(f"model {model_id}; rates: {where}")
    print(
        f"validation: {rates.n:,} messages, prior {rates.prior:.3f} (calibrated {rates.calibrated_prior:.3f}), "
        f"TPR {rates.tpr:.3f}, FPR {rates.fpr:.3f}, E[p|bull] {rates.mean_p_pos:.3f}, E[p|bear] {rates.mean_p_neg:.3f}"
    )

    def index(messages, freq: str):
        return sentiment_index(messages, freq=freq, model_id=model_id, rates=rates)

    results, tables = {}, {}
    emotions = pd.read_csv(args.emotions)
    emotions["p_bullish"] = model.predict_proba(emotions["message"].tolist())  # scored once, indexed twice
    for freq, name in (("1D", "daily"), ("1W", "weekly")):
        tables[name] = index(emotions.drop(columns="message"), freq)
        results[("StockEmotions 2020", name)] = compare(tables[name], args.min_msgs)

    public = pd.read_csv(args.public, dtype={"id": "string"})
    keep, how = held_out(model, args.public)
    print(f"public corpus: {how}", file=sys.stderr)
    if keep is not None:
        public = public[public["message"].isin(keep)]
    public = public[public["created_at"].notna()]
    public["p_bullish"] = model.predict_proba(public["message"].tolist())
    for source, rows in public.groupby("source"):
        for freq, name in (("1D", "daily"), ("1W", "weekly")):
            res = compare(index(rows.drop(columns=["message", "source"]), freq), args.min_msgs)
            if res["periods"] >= 3:
                results[(f"{source} ({len(rows):,})", name)] = res
    table(results, f"MAE and Pearson r against the self-tagged share (ticker-periods with >= {args.min_msgs} messages)")
    largest = emotions["ticker"].value_counts().index[:5].tolist()
    per_ticker(tables["daily"], tables["weekly"], args.min_msgs, largest)

    if args.plot:
        from stocksent.signals.plot import index_figure, read_prices, save_png

        fig = index_figure(tables["weekly"], args.plot_tickers.split(","), read_prices(args.prices), freq="1W")
        save_png(fig, args.plot, dpi=90)
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
