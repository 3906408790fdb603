"""Command line: a thin shell over the Python API. Parse, call, print; user errors become one line."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Callable

from . import baseline, bench, export, report, serve, tune
from .errors import StocksentError

Handler = Callable[[argparse.Namespace], int]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 128,64, got {text!r}") from None


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model and evaluate it on the test split")
    p.add_argument("--data", help="labelled CSV/CSV.gz/JSONL (default: $STOCKSENT_DATA, cache or download)")
    p.add_argument("--out", help="output directory (default: runs/<timestamp>)")
    p.add_argument("--preset", default="default", help="default | tutorial")
    p.add_argument("--config", help="JSON file of training options (a preset file written by `tune`)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-decay", type=float, help="learning-rate factor per epoch")
    p.add_argument("--word-dropout", type=float, help="fraction of training words replaced by <unk>")
    p.add_argument("--optimizer", choices=["adam", "adadelta"])
    p.add_argument("--loss", choices=["bce", "mse"])
    p.add_argument("--embed-size", type=positive_int)
    p.add_argument("--lstm-sizes", type=int_list, metavar="128,64")
    p.add_argument("--keep-prob", type=float)
    p.add_argument("--ngram-buckets", type=int, metavar="N",
                   help="hashed word pairs of the linear n-gram term (0: the LSTM alone)")
    p.add_argument("--ngram-lr", type=float, help="learning rate of the n-gram weights")
    p.add_argument("--linear-blend", action=argparse.BooleanOptionalAction, default=None,
                   help="after training, blend a logistic regression over the same n-grams into the model, "
                        "weighted on validation (default: on where there is an n-gram term)")
    p.add_argument("--seed", type=int)
    p.add_argument("--patience", type=positive_int)
    p.add_argument("--max-examples", type=positive_int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=positive_int, dest="num_threads", help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.set_defaults(handler=run_train)


def train_overrides(args: argparse.Namespace) -> dict:
    names = ["data", "out", "epochs", "batch_size", "lr", "lr_decay", "word_dropout", "optimizer", "loss",
             "embed_size", "lstm_sizes", "keep_prob", "ngram_buckets", "ngram_lr", "linear_blend", "seed", "patience",
             "max_examples", "device", "num_threads"]
    overrides = {name: getattr(args, name) for name in names}
    overrides["resume"] = args.resume or None
    return overrides


RESUME_OPTIONS = {"data", "out", "device", "num_threads", "resume"}


def run_train(args: argparse.Namespace) -> int:
    from .config import load_config_file, preset
    from .training import train

    if args.resume:
        given = [name for name, value in train_overrides(args).items() if value is not None]
        extra = sorted(set(given) - RESUME_OPTIONS) + (["config"] if args.config else [])
        if extra or args.preset != "default":
            flags = ", ".join("--" + name.replace("_", "-") for name in extra or ["preset"])
            raise StocksentError(f"--resume continues with the options the run started with; drop {flags}")

    base = load_config_file(args.config) if args.config else {}
    config = preset(base.pop("preset", args.preset) if args.config else args.preset,
                    **{**base, **{k: v for k, v in train_overrides(args).items() if v is not None}})
    result = train(config)
    test = result.metrics["test"]
    print(f"model: {result.out}")
    print(f"best epoch: {result.metrics['best_epoch']}  ({result.metrics['seconds_total']:.0f} s)")
    print(format_metrics(test))
    return 0


def format_metrics(m: dict) -> str:
    (tn, fp), (fn, tp) = m["confusion"]
    auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}"
    return (f"test n={m['n']}  accuracy {m['accuracy']:.4f}  precision {m['precision']:.4f}  "
            f"recall {m['recall']:.4f}  f1 {m['f1']:.4f}  roc_auc {auc}  "
            f"(majority {m['majority_accuracy']:.4f})\nconfusion [[tn fp] [fn tp]] = [[{tn} {fp}] [{fn} {tp}]]")


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a trained model on labelled data")
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument("--data", help="labelled file (default: the training file)")
    p.add_argument("--split", choices=["test", "all"],
                   help="test: the recorded test split (training file only); all: every row")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate
    from .predict import SentimentModel

    # float32: the reference numbers, the same as training's metrics.json on any CPU.
    result = evaluate(SentimentModel.load(args.model, precision="float32"), args.data, args.split)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"split: {result['split']}")
        print(format_metrics(result).replace("test n=", "n="))
    return 0


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="label messages as bullish or bearish")
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="messages (else --input, else stdin)")
    p.add_argument("--input", help="CSV/CSV.gz (message column), JSON Lines (message/body) or text, one per line")
    p.add_argument("--output", help="write results here (CSV if it ends in .csv, else JSON Lines)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--backend", default="torch", help="torch (default) or onnx")
    p.add_argument("--precision", default="auto",
                   help="auto (default: bfloat16 where the CPU has it natively), float32 or bfloat16")
    p.set_defaults(handler=run_predict)


def read_predict_input(args: argparse.Namespace) -> list[str]:
    from .data import read_texts

    if args.texts and args.input:
        raise StocksentError("give messages as arguments or with --input, not both")
    if args.texts:
        return list(args.texts)
    if args.input:
        return read_texts(args.input)
    if sys.stdin is None or sys.stdin.isatty():
        raise StocksentError("no messages: pass TEXT arguments, --input PATH, or pipe messages on stdin")
    return read_stdin_lines()


def read_stdin_lines() -> list[str]:
    """Non-blank lines of stdin, decoded as UTF-8 whatever the locale says (as files are)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text-only stream (tests, embedding): already decoded
        text = sys.stdin.read()
    else:
        raw = stream.read()
        try:
            text = raw.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise StocksentError(f"stdin is not UTF-8 text (bad byte at line {line}); send UTF-8") from None
    return [line.removesuffix("\r") for line in text.split("\n") if line.strip()]


def prediction_rows(texts: list[str], predictions) -> list[dict]:
    return [{"message": t, "label": p.label, "p_bullish": round(p.p_bullish, 6)} for t, p in zip(texts, predictions)]


def run_predict(args: argparse.Namespace) -> int:
    from .atomic import atomic_open
    from .predict import SentimentModel

    model = SentimentModel.load(args.model, backend=args.backend, precision=args.precision)
    texts = read_predict_input(args)
    rows = prediction_rows(texts, model.predict(texts))
    if args.output:
        try:
            with atomic_open(args.output, "w", encoding="utf-8", newline="") as handle:
                write_rows(handle, rows, as_csv=args.output.lower().endswith(".csv"))
        except OSError as exc:  # a directory, no permission, disk full: the old file is left as it was
            raise StocksentError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    elif args.json:
        write_rows(sys.stdout, rows, as_csv=False)
    else:
        for row in rows:
            print(f"{row['label']:<8} {row['p_bullish']:.3f}  {row['message']}")
    return 0


def write_rows(handle: io.TextIOBase, rows: list[dict], as_csv: bool) -> None:
    if as_csv:
        writer = csv.DictWriter(handle, fieldnames=["message", "label", "p_bullish"])
        writer.writeheader()
        writer.writerows(rows)
    else:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


# Each entry adds one subcommand; its module owns the parser and the handler.
COMMANDS: list[Callable] = [add_train, add_evaluate, add_predict, serve.add_serve, export.add_export,
                            baseline.add_baseline, report.add_report, tune.add_tune, bench.add_bench]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="stocksent", description="Sentiment of StockTwits messages with an LSTM.")
    parser.add_argument("--version", action="version", version=f"stocksent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except StocksentError as err:
        print(f"stocksent: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stocksent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): not an error worth a traceback
        return 0


if __name__ == "__main__":
    sys.exit(main())
