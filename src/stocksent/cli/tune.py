"""`stocksent tune`: search hyperparameters on the validation split and write a preset file."""

from __future__ import annotations

import argparse

from stocksent.cli.args import finite_float, non_negative_int, positive_int


def register(sub) -> None:
    p = sub.add_parser("tune", help="search hyperparameters on the validation split; write a preset file")
    p.add_argument("--data", help="labelled file (default: $STOCKSENT_DATA, cache or download)")
    p.add_argument("--trials", type=positive_int, required=True, help="number of trials")
    p.add_argument("--timeout", type=finite_float, help="start no new trial after this many seconds")
    p.add_argument("--out", help="preset file to write (default: runs/tune-<timestamp>.json)")
    p.add_argument("--epochs", type=positive_int, help="epochs per trial (default: the preset's)")
    p.add_argument("--max-examples", type=positive_int, help="tune on the first N usable rows only")
    p.add_argument("--seed", type=non_negative_int, default=1, help="split, training and sampler seed (default 1)")
    p.add_argument("--threads", type=positive_int, dest="num_threads", help="torch CPU threads")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stocksent.tools.tune import tune

    result = tune(
        args.data, args.trials, args.timeout, args.out, args.epochs, args.max_examples, args.seed, args.num_threads
    )
    info = result["tune"]
    print(f"preset: {result['path']}  (train with: stocksent train --config {result['path']})")
    print(
        f"best trial {info['best_trial']}: val accuracy {info['best_val_accuracy']:.4f}  "
        f"({info['completed']} completed, {info['pruned']} pruned, {info['seconds_total']:.0f} s)"
    )
    print(" ".join(f"{k}={v}" for k, v in result["train"].items()))
    return 0
