"""`stocksent train`: train a model and evaluate it on the test split."""

from __future__ import annotations

import argparse

from stocksent.cli.args import finite_float, format_metrics, int_list, non_negative_int, positive_int

# Flags whose value is a training option of the same name (dest); None means "not given".
OPTION_FLAGS = [
    "data",
    "out",
    "epochs",
    "batch_size",
    "lr",
    "lr_decay",
    "word_dropout",
    "optimizer",
    "loss",
    "embed_size",
    "lstm_sizes",
    "keep_prob",
    "ngram_buckets",
    "ngram_lr",
    "linear_blend",
    "seed",
    "patience",
    "max_examples",
    "device",
    "num_threads",
    "nproc",
    "split",
    "init_from",
]


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model and evaluate it on the test split")
    p.add_argument(
        "--data",
        nargs="+",
        metavar="PATH",
        help="labelled files, directories or globs: CSV, JSON Lines, StockTwits API JSON, Parquet, each "
        "optionally .gz; duplicates by id (else exact text) kept once (default: $STOCKSENT_DATA, cache or download)",
    )
    p.add_argument(
        "--split",
        choices=["random", "time"],
        help="random: seeded 80/10/10 (default); time: oldest 80%% train, next 10%% validation, newest 10%% test",
    )
    p.add_argument(
        "--init-from",
        metavar="DIR",
        help="start from this trained model: its weights, text options and vocabulary (extended with new words)",
    )
    p.add_argument("--out", help="output directory (default: runs/<timestamp>)")
    p.add_argument("--preset", help="default | tutorial")
    p.add_argument("--config", help="JSON file of training options (a preset file written by `tune`)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=finite_float)
    p.add_argument("--lr-decay", type=finite_float, help="learning-rate factor per epoch")
    p.add_argument("--word-dropout", type=finite_float, help="fraction of training words replaced by <unk>")
    p.add_argument("--optimizer", choices=["adam", "adadelta"])
    p.add_argument("--loss", choices=["bce", "mse"])
    p.add_argument("--embed-size", type=positive_int)
    p.add_argument("--lstm-sizes", type=int_list, metavar="128,64")
    p.add_argument("--keep-prob", type=finite_float)
    p.add_argument(
        "--ngram-buckets",
        type=non_negative_int,
        metavar="N",
        help="hashed word pairs of the linear n-gram term (0: the LSTM alone)",
    )
    p.add_argument("--ngram-lr", type=finite_float, help="learning rate of the n-gram weights")
    p.add_argument(
        "--linear-blend",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after training, blend a logistic regression over the same n-grams into the model, "
        "weighted on validation (default: on where there is an n-gram term)",
    )
    p.add_argument("--seed", type=non_negative_int)
    p.add_argument("--patience", type=positive_int)
    p.add_argument("--max-examples", type=positive_int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=positive_int, dest="num_threads", help="torch CPU threads")
    p.add_argument(
        "--nproc",
        type=positive_int,
        metavar="N",
        help="train in N processes on this machine (PyTorch DDP; under torchrun leave it out)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out (re-run the same command with --resume added)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stocksent.config import config_from_sources
    from stocksent.training import train

    overrides = {name: getattr(args, name) for name in OPTION_FLAGS}
    if overrides["data"] is not None and len(overrides["data"]) == 1:
        overrides["data"] = overrides["data"][0]
    config = config_from_sources(args.preset, args.config, overrides, resume=args.resume)
    result = train(config)
    if result.rank:  # one of several processes (torchrun): rank 0 reports
        return 0
    print(f"model: {result.out}")
    print(f"best epoch: {result.metrics['best_epoch']}  ({result.metrics['seconds_total']:.0f} s)")
    print(format_metrics(result.metrics["test"]))
    return 0
