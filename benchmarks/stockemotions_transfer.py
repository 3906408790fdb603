"""Three ways to a model of StockEmotions 2020 (37 tickers, dated), scored on its newest 10%.

1. the $SPY default model as it is (trained on the tutorial's 2017 $SPY file, default preset);
2. a model trained on StockEmotions alone (default preset, `--split time`);
3. the $SPY model continued on StockEmotions (`--init-from`, default preset, `--split time`).

All three are scored on the same messages: StockEmotions' own time-ordered split (oldest 80%
train, next 10% validation, newest 10% test), rebuilt from the recorded split of model 2 and checked
by fingerprint against model 3's. Accuracy and balanced accuracy (the mean of the two classes'
recalls; StockEmotions is ~2/3 bullish) at each model's own decision threshold.

None of these is shipped as a default: this measures what continued training buys.

    python benchmarks/stockemotions_transfer.py --spy runs/spy   # trains the $SPY model there if missing
    python benchmarks/stockemotions_transfer.py --spy /tmp/spy_default --workdir /tmp/transfer --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SPY_DATA = SHARED / "StockTwits_SPY_Sentiment_2017.gz"
EMOTIONS = SHARED / "StockEmotions_2020.csv.gz"


def trained(out: Path, **options) -> Path:
    """A default-preset model in `out`, trained with `options` unless it is already there."""
    from stocksent import preset, train

    if not (out / "config.json").is_file():
        started = time.perf_counter()
        train(preset("default", out=str(out), **options))
        print(f"trained {out} in {time.perf_counter() - started:.0f} s (load {os.getloadavg()[0]:.1f})")
    return out


def scores(model_dir: Path, messages: list[str], labels) -> dict:
    import numpy as np

    from stocksent import SentimentModel
    from stocksent.evaluation.groups import balanced_accuracy
    from stocksent.labels import is_bullish

    model = SentimentModel.load(model_dir, precision="float32")
    predicted = is_bullish(model.predict_proba(messages), model.threshold).astype(int)
    y = np.asarray(labels).astype(int)
    return {
        "accuracy": float((predicted == y).mean()),
        "balanced_accuracy": balanced_accuracy(y, predicted),
        "share_bullish_predicted": float(predicted.mean()),
        "threshold": model.threshold,
    }


def peer(model_dir: Path, out: Path) -> dict:
    """The TF-IDF peer (`stocksent baseline --model`) on the model's own recorded splits."""
    from stocksent.tools.baseline import run_baseline

    (tn, fp), (fn, tp) = run_baseline(None, out, model_dir=model_dir)["test"]["confusion"]
    n = tn + fp + fn + tp
    return {"accuracy": (tn + tp) / n, "balanced_accuracy": (tn / (tn + fp) + tp / (tp + fn)) / 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spy", default="runs/spy-default", help="the $SPY default model (trained here if missing)")
    parser.add_argument("--workdir", default="runs/stockemotions-transfer", help="where models 2 and 3 go")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    from stocksent.artifacts import read_json
    from stocksent.splits import recorded_splits, splits_sha256

    workdir = Path(args.workdir)
    spy = trained(Path(args.spy), data=str(SPY_DATA), seed=args.seed)
    alone = trained(workdir / "emotions-alone", data=str(EMOTIONS), split="time", seed=args.seed)
    continued = trained(workdir / "spy-continued", data=str(EMOTIONS), split="time", init_from=str(spy), seed=args.seed)
    configs = {name: read_json(d / "config.json") for name, d in (("alone", alone), ("continued", continued))}
    splits = {name: recorded_splits(c["data"], _options(c), None) for name, c in configs.items()}
    fingerprints = {name: splits_sha256(s)["test"] for name, s in splits.items()}
    if len(set(fingerprints.values())) != 1:
        raise SystemExit(f"models 2 and 3 were tested on different messages: {fingerprints}")
    test = splits["alone"].test
    messages, labels = list(test.messages), test.labels
    times = test.times.astype("datetime64[ns]").astype("datetime64[D]")
    rows = {
        "$SPY default model as it is": scores(spy, messages, labels),
        "StockEmotions alone": scores(alone, messages, labels),
        "$SPY model continued on StockEmotions": scores(continued, messages, labels),
        "(reference) TF-IDF + logistic regression, StockEmotions alone": peer(alone, workdir / "baseline"),
    }
    result = {
        "test": {
            "n": len(labels),
            "share_bullish": float(labels.mean()),
            "from": str(times.min()),
            "to": str(times.max()),
            "sha256": fingerprints["alone"],
        },
        "split": configs["alone"]["data"]["split"],
        "models": {"spy": str(spy), "alone": str(alone), "continued": str(continued)},
        "rows": rows,
        "load": os.getloadavg()[0],
    }
    print(
        f"StockEmotions 2020, newest 10% ({result['test']['n']} messages, {result['test']['from']} to "
        f"{result['test']['to']}, {result['test']['share_bullish']:.1%} bullish)\n"
    )
    print("| model | accuracy | balanced accuracy |\n|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['accuracy']:.3f} | {row['balanced_accuracy']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def _options(config: dict):
    from stocksent.text import TextOptions

    return TextOptions.from_dict(config["text"])


if __name__ == "__main__":
    main()
