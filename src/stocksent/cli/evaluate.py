"""`stocksent evaluate`: metrics of a trained model on labelled data."""

from __future__ import annotations

import argparse
import json

from stocksent.cli.args import format_metrics


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a trained model on labelled data")
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument("--data", help="labelled file (default: the training file)")
    p.add_argument(
        "--split", choices=["test", "all"], help="test: the recorded test split (training file only); all: every row"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stocksent.sentiment import SentimentModel

    # float32: the reference numbers, the same as training's metrics.json on any CPU.
    result = SentimentModel.load(args.model, precision="float32").evaluate(args.data, split=args.split)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"split: {result['split']}")
        print(format_metrics(result, prefix=""))
    return 0
