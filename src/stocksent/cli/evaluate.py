"""`stocksent evaluate`: metrics of a trained model on labelled data, overall or per ticker or month."""

from __future__ import annotations

import argparse
import json

from stocksent.cli.args import format_metrics


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a trained model on labelled data")
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument(
        "--data", nargs="+", metavar="PATH", help="labelled files, directories or globs (default: the training data)"
    )
    p.add_argument(
        "--split", choices=["test", "all"], help="test: the recorded test split (training data only); all: every row"
    )
    p.add_argument(
        "--by",
        choices=["ticker", "month"],
        help="also the metrics per ticker or per month: n, accuracy, balanced accuracy, share bullish true/predicted",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stocksent.evaluation.evaluate import evaluate
    from stocksent.evaluation.groups import format_groups
    from stocksent.sentiment import SentimentModel

    data = args.data[0] if args.data and len(args.data) == 1 else args.data
    # float32: the reference numbers, the same as training's metrics.json on any CPU.
    result = evaluate(SentimentModel.load(args.model, precision="float32"), data, split=args.split, by=args.by)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"split: {result['split']}")
        print(format_metrics(result, prefix=""))
        if args.by:
            print(format_groups(result["groups"], args.by))
    return 0
