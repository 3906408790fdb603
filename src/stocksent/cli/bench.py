"""`stocksent bench`: training and prediction speed on the real data."""

from __future__ import annotations

import argparse
import json

from stocksent.cli.args import positive_int


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure training and prediction speed on the real data")
    p.add_argument("--data", help="labelled dataset (default: $STOCKSENT_DATA, cache or download)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--quick",
        action="store_true",
        help="training timed on 20 batches and extrapolated; a model trained on those batches",
    )
    p.add_argument("--model", help="predict with this model directory instead of one trained by the bench")
    p.add_argument("--max-examples", type=positive_int, help="use only the first N messages of the data")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stocksent.tools.bench import bench, format_table

    result = bench(args.data, args.device, args.quick, args.model, args.max_examples, args.threads)
    print(json.dumps(result) if args.json else format_table(result))
    return 0
