"""`stocksent baseline`: the TF-IDF + logistic regression peer on the same split as train."""

from __future__ import annotations

import argparse
from pathlib import Path

from stocksent.cli.args import format_metrics, non_negative_int, positive_int


def register(sub) -> None:
    p = sub.add_parser("baseline", help="TF-IDF + logistic regression on the same split as train")
    p.add_argument(
        "--data", nargs="+", metavar="PATH", help="labelled files, directories or globs, as train's (default: its)"
    )
    p.add_argument("--model", help="use the splits this trained model was trained and tested on (its config.json)")
    p.add_argument("--split", choices=["random", "time"], default="random", help="as train's --split")
    p.add_argument("--out", required=True, help="directory for metrics.json")
    p.add_argument("--seed", type=non_negative_int, default=1, help="split seed, as train's --seed (default 1)")
    p.add_argument("--max-examples", type=positive_int, help="first N usable rows only, as train's")
    p.add_argument("--preset", default="default", help="preset whose text options to use (default)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stocksent.artifacts import METRICS
    from stocksent.tools.baseline import run_baseline

    data = args.data[0] if args.data and len(args.data) == 1 else args.data
    metrics = run_baseline(
        data, args.out, args.seed, args.max_examples, args.preset, split=args.split, model_dir=args.model
    )
    chosen = metrics["validation"]["chosen"]
    print(f"baseline: {Path(args.out) / METRICS}")
    print(
        f"chosen on validation: C={chosen['C']:g} min_df={chosen['min_df']}  "
        f"(val accuracy {metrics['validation']['accuracy']:.4f}, {metrics['seconds_total']:.0f} s)"
    )
    print(format_metrics(metrics["test"]))
    return 0
