"""`stocksent predict`: label messages given as arguments, in a file, or on stdin."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys


def register(sub) -> None:
    p = sub.add_parser("predict", help="label messages as bullish or bearish")
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="messages (else --input, else stdin)")
    p.add_argument("--input", help="CSV/CSV.gz (message column), JSON Lines (message/body) or text, one per line")
    p.add_argument("--output", help="write results here (CSV if it ends in .csv, else JSON Lines)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--backend", default="torch", help="torch (default) or onnx")
    p.add_argument(
        "--precision",
        default="auto",
        help="auto (default: bfloat16 where the CPU has it natively), float32 or bfloat16",
    )
    p.set_defaults(handler=run)


def read_input(args: argparse.Namespace) -> list[str]:
    from stocksent.data import read_texts
    from stocksent.errors import StocksentError

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
    from stocksent.errors import StocksentError

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


def run(args: argparse.Namespace) -> int:
    from stocksent.atomic import atomic_open
    from stocksent.errors import StocksentError
    from stocksent.sentiment import SentimentModel

    model = SentimentModel.load(args.model, backend=args.backend, precision=args.precision)
    texts = read_input(args)
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
